"""Hosts we do not trust and numbers as people write them: no link or redirect carries a Host we
did not choose, no HTML anywhere (OPTIONS, non-canonical paths, nginx's own errors), one strict
number grammar for every numeric parameter."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
from pathlib import Path

import pytest

from indoor import create_app
from scripts.services import ROOT_DIR, NginxServer, free_port
from tests import strict_json
from tests.conftest import TEST_RATE_LIMITS


@pytest.fixture
def make_client(database_url, redis_url):
    apps = []

    def make(**config):
        app = create_app(
            {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_FORMAT": "text", **TEST_RATE_LIMITS, **config}
        )
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["indoor.db"].close()


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send bytes as they are (no client library fixes the path or the headers) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    break
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return status, headers, body


# -- numbers --------------------------------------------------------------------------------------

ARABIC_INDIC_ONE = "\u0661"
FULL_WIDTH_ONE = "\uff11"


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/rooms/?level=1_0", "level"),
        (f"/api/rooms/?level={ARABIC_INDIC_ONE}", "level"),
        (f"/api/rooms/?level={FULL_WIDTH_ONE}", "level"),
        ("/api/rooms/?level=%201", "level"),
        ("/api/rooms/?level=1%20", "level"),
        ("/api/rooms/?level=1.0.0", "level"),
        ("/api/rooms/?level=Infinity", "level"),
        ("/api/rooms/?level=0x1", "level"),
        ("/api/base-floor/?level=-%D9%A1", "level"),
        ("/api/rooms/?bbox=1_3,52,14,53", "bbox"),
        (f"/api/rooms/?bbox=13,52,14,5{FULL_WIDTH_ONE}", "bbox"),
        ("/api/rooms/?bbox=13,%2052,14,53", "bbox"),
        ("/api/rooms/?bbox=13,52,14,nan", "bbox"),
        ("/api/rooms/?limit=1_0", "limit"),
        (f"/api/rooms/?limit={ARABIC_INDIC_ONE}", "limit"),
        ("/api/rooms/?limit=%2010", "limit"),
        ("/api/route/?from=1_3.369,52.525&to=1", "from"),
        (f"/api/route/?from=13.369,52.525,{ARABIC_INDIC_ONE}&to=1", "from"),
        (f"/api/route/?from=1&to={FULL_WIDTH_ONE}", "to"),
        ("/api/route/?from=1&to=13.369,%2052.525", "to"),
        ("/api/route/?from=1&to=%201", "to"),
        ("/api/route/?from=1&to=13.369,52.525,1e", "to"),
    ],
)
def test_numbers_follow_one_strict_grammar(client, path, parameter):
    response = client.get(path)
    assert response.status_code == 400, (path, response.data)
    body = strict_json.loads(response.data)
    assert body["error"]["code"] == "bad_request" and f"'{parameter}'" in body["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/rooms/?level=1",
        "/api/rooms/?level=-1",
        "/api/rooms/?level=%2B1",
        "/api/rooms/?level=0.5",
        "/api/rooms/?level=.5",
        "/api/rooms/?level=1.",
        "/api/rooms/?level=1e0",
        "/api/rooms/?level=1E-1",
        "/api/rooms/?bbox=13.3,52.5,13.4,52.6",
        "/api/rooms/?bbox=-1.5e1,-8e1,1.5e1,8e1",
        "/api/rooms/?limit=10",
    ],
)
def test_numbers_as_people_write_them_are_accepted(client, path):
    assert client.get(path).status_code == 200, path


def test_route_places_as_people_write_them_are_accepted(client, sql):
    ((room,),) = sql("SELECT min(ogc_fid) FROM room_points WHERE level = 0")
    ((lon, lat),) = sql("SELECT ST_X(wkb_geometry), ST_Y(wkb_geometry) FROM room_points WHERE ogc_fid = %s", (room,))
    for place in (f"{lon},{lat}", f"{lon},{lat},0", f"{lon},{lat},0.0", f"{lon:.6e},{lat},+0"):
        response = client.get("/api/route/", query_string={"from": place, "to": str(room)})
        assert response.status_code == 200, (place, response.data)


# -- links and paths ----------------------------------------------------------------------------


def test_next_links_never_carry_the_request_host(make_client):
    client = make_client()
    for path in ("/api/rooms/?limit=2", "/api/base-floor/?limit=2&layer=wall"):
        response = client.get(path, headers={"Host": "evil.example"})
        (link,) = strict_json.loads(response.data)["links"]
        assert link["href"].startswith(path.split("?")[0] + "?") and "evil" not in link["href"]
        assert client.get(link["href"]).status_code == 200
    public = make_client(PUBLIC_URL="https://maps.example.org/")
    response = public.get("/api/rooms/?limit=2&level=0", headers={"Host": "evil.example"})
    (link,) = strict_json.loads(response.data)["links"]
    assert link["href"].startswith("https://maps.example.org/api/rooms/?limit=2&level=0&cursor=")


def test_a_bad_public_url_is_refused_at_start():
    for value in ("maps.example.org", "ftp://maps.example.org", "https://maps.example.org/?x=1"):
        with pytest.raises(ValueError, match="PUBLIC_URL"):
            create_app({"PUBLIC_URL": value, "DATABASE_URL": ""})


def test_non_canonical_paths_are_a_json_404_never_a_redirect_to_a_host(serve):
    """Werkzeug merged slashes with a 308 to `http://<Host>/api/rooms/` (an HTML body); now
    slashes inside a path are no resource. Leading slashes are one slash to the WSGI layer and a
    trailing one more is the listing still: its link is the canonical path, never the Host."""
    server = serve(workers=1)
    for path in ("//api//rooms//", "/api//rooms/", "//evil.example/api/rooms/", "/api/rooms//1"):
        request = f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode()
        status, headers, body = raw_request(server.port, request)
        assert status == 404, (path, status, headers)
        assert "location" not in headers and headers["content-type"] == "application/json"
        assert strict_json.loads(body)["error"]["code"] == "not_found"
    for path in ("//api/rooms/", "/api/rooms//", "/api/rooms"):
        request = f"GET {path}?limit=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n".encode()
        status, headers, body = raw_request(server.port, request)
        assert status == 200 and "location" not in headers
        (link,) = strict_json.loads(body)["links"]
        assert link["href"].startswith("/api/rooms/?limit=1&cursor="), (path, link)


def test_options_names_the_methods_without_a_body(client):
    for path in ("/api/rooms/", "/api/route/", "/api/health/ready", "/api/openapi.json", "/api/rooms/5"):
        response = client.options(path)
        assert response.status_code == 200
        assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
        assert response.data == b"" and "Content-Type" not in response.headers


# -- TRUSTED_HOSTS in production --------------------------------------------------------------------


def _gunicorn(env: dict) -> subprocess.CompletedProcess | subprocess.Popen:
    binary = Path(os.environ.get("VIRTUAL_ENV", ROOT_DIR / ".venv")) / "bin" / "gunicorn"
    environment = {**os.environ, "BIND": f"127.0.0.1:{free_port()}", "WEB_CONCURRENCY": "1", **env}
    return subprocess.Popen(
        [str(binary), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_production_refuses_to_start_without_trusted_hosts(database_url):
    refused = _gunicorn({"DATABASE_URL": database_url, "ENVIRONMENT": "production", "TRUSTED_HOSTS": ""})
    output, _ = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert b"refusing to start: TRUSTED_HOSTS is not set" in output


def test_production_starts_with_trusted_hosts(serve):
    server = serve(workers=1, ENVIRONMENT="production", TRUSTED_HOSTS="maps.example.org,127.0.0.1")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/api/health/")
    assert conn.getresponse().status == 200
    conn.close()
    request = b"GET /api/health/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    status, headers, body = raw_request(server.port, request)
    assert status == 400 and strict_json.loads(body)["error"]["code"] == "bad_request"


def _ask(port: int, path: str, host: str) -> tuple[int, dict, bytes]:
    return raw_request(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())


def test_trusted_hosts_match_any_case_and_check_the_port(serve):
    """`Host: 127.0.0.1:1` was answered (and /api/tiles.json, /ogc/ and `next` links pointed at
    port 1); `Host: LOCALHOST` was refused. An entry without a port allows the port clients use
    (none, the scheme's default, or the one the server listens on); an entry may name its port."""
    server = serve(workers=1, ENVIRONMENT="production", TRUSTED_HOSTS="127.0.0.1,localhost,Maps.Example.org:8443")
    port = server.port
    for host in ("127.0.0.1", f"127.0.0.1:{port}", "127.0.0.1:80", "LOCALHOST", f"LocalHost:{port}"):
        status, _, body = _ask(port, "/api/health/", host)
        assert status == 200, (host, body)
    for host in ("127.0.0.1:1", f"127.0.0.1:{port + 1}", "localhost:8443", "maps.example.org", "maps.example.org:8444"):
        status, _, body = _ask(port, "/api/tiles.json", host)
        assert status == 400, (host, body)
        assert strict_json.loads(body)["error"]["code"] == "bad_request"
    status, _, body = _ask(port, "/api/tiles.json", "MAPS.example.org:8443")
    assert status == 200
    assert all(url.startswith("http://maps.example.org:8443/api/tiles/") for url in strict_json.loads(body)["tiles"])
    status, _, body = _ask(port, "/ogc/", f"127.0.0.1:{port}")
    assert status == 200
    hrefs = [link["href"] for link in strict_json.loads(body)["links"]]
    assert hrefs and all(href.startswith(f"http://127.0.0.1:{port}/ogc") for href in hrefs), hrefs


def test_a_trusted_host_with_a_bad_port_is_refused_at_start():
    with pytest.raises(ValueError, match="TRUSTED_HOSTS"):
        create_app({"TRUSTED_HOSTS": "maps.example.org:http", "DATABASE_URL": ""})


# -- nginx's own errors -----------------------------------------------------------------------------


@pytest.fixture
def nginx_in_front(serve, workdir):
    app = serve(workers=1, TRUSTED_PROXY_COUNT=1)
    nginx = NginxServer((ROOT_DIR / "deploy" / "nginx.conf").read_text(), app.port, workdir).start()
    yield nginx
    nginx.stop()


NGINX_REFUSALS = {
    "malformed request line": (b"GET /api/rooms/ HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, "bad_request"),
    "bad header": (b"GET /api/rooms/ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "bad_request"),
    "URI too long": (
        b"GET /api/rooms/?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        414,
        "uri_too_long",
    ),
    "header too large": (
        b"GET /api/rooms/ HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 9000 + b"\r\nConnection: close\r\n\r\n",
        431,
        "headers_too_large",
    ),
    "an error page's own path": (
        b"GET /_indoor_error/400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        404,
        "not_found",
    ),
    "body too large": (
        b"POST /api/rooms/ HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\nConnection: close\r\n\r\n" + b"a" * 20000,
        413,
        "payload_too_large",
    ),
}


def test_many_header_fields_are_no_html_page(nginx_in_front, serve):
    """gunicorn answered more than 100 header fields with an HTML 431, and nginx passed it on."""
    fields = b"".join(b"X-Field-%d: v\r\n" % i for i in range(300))
    request = b"GET /api/health/ HTTP/1.1\r\nHost: x\r\n" + fields + b"Connection: close\r\n\r\n"
    for port in (nginx_in_front.port, serve(workers=1).port):
        status, headers, body = raw_request(port, request)
        assert status == 200 and headers["content-type"] == "application/json"
        assert strict_json.loads(body) == {"ok": True}


@pytest.mark.parametrize("case", sorted(NGINX_REFUSALS))
def test_nginx_refuses_with_json_not_html(nginx_in_front, case):
    request, expected_status, code = NGINX_REFUSALS[case]
    status, headers, body = raw_request(nginx_in_front.port, request)
    assert status == expected_status, (case, status, body[:200])
    assert headers["content-type"] == "application/json", headers
    assert b"<html" not in body.lower()
    assert strict_json.loads(body)["error"]["code"] == code
