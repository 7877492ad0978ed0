"""Behind the real nginx with deploy/nginx.conf: real client addresses, request ids, no public /metrics;
JSON for requests gunicorn would refuse, route refusals as the app wrote them, no client-chosen port in links."""

import http.client
import json
import re
import socket
import threading
import time

import psycopg2
import pytest

from scripts.services import ROOT_DIR, NginxServer
from tests import strict_json
from tests.http import get
from tests.test_gunicorn_errors import MALFORMED


def request_from(source_ip: str, port: int, path: str, headers: dict | None = None):
    """GET from a given loopback source address (127.0.0.2, ...): another client, as nginx sees it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source_ip, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def behind_nginx(serve, workdir, flushed_redis_db):
    servers = []

    def start(**env):
        app = serve(workers=1, TRUSTED_PROXY_COUNT=1, RATELIMIT_STORAGE_URL=flushed_redis_db(14), **env)
        nginx = NginxServer((ROOT_DIR / "deploy" / "nginx.conf").read_text(), app.port, workdir).start()
        servers.append(nginx)
        return app, nginx

    yield start
    for nginx in servers:
        nginx.stop()


def _access_lines(app, timeout: float = 5.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in app.logfile.read_text().splitlines() if line.startswith("{")]
        lines = [line for line in lines if line.get("logger") == "indoor.access"]
        if lines:
            break
        time.sleep(0.05)
    return lines


def test_the_real_client_address_cannot_be_spoofed(behind_nginx):
    app, nginx = behind_nginx(RATELIMIT_DEFAULT="5/hour")
    # Client 127.0.0.2 claims to be five other addresses in turn: all count as 127.0.0.2.
    statuses = [
        request_from("127.0.0.2", nginx.port, "/api/openapi.json", {"X-Forwarded-For": f"203.0.113.{i}"})[0]
        for i in range(7)
    ]
    assert statuses == [200] * 5 + [429, 429]
    # Another client has its own budget.
    assert request_from("127.0.0.3", nginx.port, "/api/openapi.json")[0] == 200
    clients = {line["client"] for line in _access_lines(app)}
    assert clients == {"127.0.0.2", "127.0.0.3"}, clients  # neither nginx's 127.0.0.1 nor a spoofed one


def test_request_ids_pass_through_nginx(behind_nginx):
    app, nginx = behind_nginx()
    status, headers, _ = request_from("127.0.0.2", nginx.port, "/api/openapi.json", {"X-Request-ID": "client-id-42"})
    assert status == 200 and headers["X-Request-ID"] == "client-id-42"
    status, headers, _ = request_from("127.0.0.2", nginx.port, "/api/openapi.json")
    made_by_nginx = headers["X-Request-ID"]
    assert status == 200 and re.fullmatch(r"[0-9a-f]{32}", made_by_nginx)
    logged = {line["request_id"] for line in _access_lines(app)}
    assert {"client-id-42", made_by_nginx} <= logged


def test_metrics_are_not_reachable_through_nginx(behind_nginx):
    app, nginx = behind_nginx(METRICS_ENABLED=1)
    assert get(app.base_url + "/metrics")[0] == 200  # the private scraper's way in
    for path in ["/metrics", "/api/../metrics", "/api/%2e%2e/metrics", "/api/..%2fmetrics", "/api/%2E%2E%2Fmetrics"]:
        status, headers, body = request_from("127.0.0.2", nginx.port, path)
        assert status in (400, 404), (path, status)
        assert b"indoor_http_requests" not in body, path
    status, _, body = request_from("127.0.0.2", nginx.port, "/metrics")
    assert json.loads(body)["error"]["code"] == "not_found"
    status, _, body = request_from("127.0.0.2", nginx.port, "/no-such-page")  # "/" is the map page
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"


def test_nginx_answers_json_503_when_the_app_is_down(behind_nginx):
    app, nginx = behind_nginx()
    status, headers, _ = request_from("127.0.0.2", nginx.port, "/api/health/")
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    app.stop()
    status, headers, body = request_from("127.0.0.2", nginx.port, "/api/health/", {"X-Request-ID": "while-down"})
    assert status == 503 and headers["Retry-After"] == "1" and headers["X-Request-ID"] == "while-down"
    assert json.loads(body) == {"error": {"code": "unavailable", "message": "service unavailable"}}


# -- the previous round's answers (issue 23), as clients behind deploy/nginx.conf get them ----------


def raw_answer(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send bytes as they are; read one answer (to its Content-Length: nginx may keep the
    connection open) or what came before the server closed or reset it."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                received += chunk
                head, found, body = received.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if found and length and len(body) >= int(length.group(1)):
                    break
        except ConnectionResetError:
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_what_gunicorn_refuses_is_json_through_nginx_too(behind_nginx, name):
    """Each request gunicorn refuses while parsing, sent to nginx: nginx refuses it first or passes
    gunicorn's JSON on; either way the JSON error shape, never an HTML page."""
    _, nginx = behind_nginx()
    data, _ = MALFORMED[name]
    status, headers, body = raw_answer(nginx.port, data)
    # 501: a Transfer-Encoding nginx does not know (nginx answered it with an HTML page).
    assert 400 <= status < 500 or status == 501, (name, status, headers)
    assert headers["content-type"] == "application/json", (name, headers)
    assert b"<html" not in body.lower()
    assert strict_json.loads(body)["error"]["code"]


def test_route_budget_and_slot_refusals_reach_clients_through_nginx_unchanged(behind_nginx, direct_database_url, sql):
    """The route cost budget's 422 (naming ROUTE_MAX_LENGTH_M) and the computation slots' 503 with
    Retry-After pass nginx as the app wrote them (nginx's own 503 page is for its own errors)."""
    a, b, c, d = [row[0] for row in sql("SELECT ogc_fid FROM room_points ORDER BY ogc_fid LIMIT 4")]
    _, nginx = behind_nginx(ROUTE_MAX_LENGTH_M=1)
    status, _, body = request_from("127.0.0.2", nginx.port, f"/api/route/?from={a}&via={b}&to={a}")
    assert status == 422
    error = json.loads(body)["error"]
    assert error["code"] == "route_too_long" and "ROUTE_MAX_LENGTH_M" in error["message"]
    _, nginx = behind_nginx(ROUTE_MAX_CONCURRENT=1, ROUTE_QUEUE_WAIT_S=0.3)
    blocker = psycopg2.connect(direct_database_url)
    results = {}
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE room_points, nav_edges_final IN ACCESS EXCLUSIVE MODE")
        slow = threading.Thread(
            target=lambda: results.update(slow=request_from("127.0.0.2", nginx.port, f"/api/route/?from={c}&to={d}"))
        )
        slow.start()
        time.sleep(1.5)  # the slow one holds the worker's one slot (a loaded machine is slow to send it)
        status, headers, body = request_from("127.0.0.3", nginx.port, f"/api/route/?from={d}&to={c}")
        assert status == 503 and headers["Retry-After"] == "1", (status, body)
        error = json.loads(body)["error"]
        # The app's own 503 (the slot wait; on a loaded machine the lock's statement timeout may
        # come first), not nginx's page for its own errors ("service unavailable").
        assert error["code"] == "unavailable", error
        assert "too many routes" in error["message"] or "database unavailable" in error["message"], error
    finally:
        blocker.rollback()
        blocker.close()
    slow.join(30)
    assert results["slow"][0] == 200  # the lock gone, the one computing finishes


def test_links_behind_nginx_never_carry_a_port_the_client_chose(behind_nginx):
    """nginx passes the host without the client's port ($host), in lower case: `Host: 127.0.0.1:1`
    and `Host: LOCALHOST` are answered with links to the hosts TRUSTED_HOSTS names, a foreign
    host is refused with the JSON 400."""
    _, nginx = behind_nginx(ENVIRONMENT="production", TRUSTED_HOSTS="127.0.0.1,localhost")
    for host, expected in (("127.0.0.1:1", "http://127.0.0.1/"), ("LOCALHOST", "http://localhost/")):
        status, _, body = request_from("127.0.0.2", nginx.port, "/api/tiles.json", {"Host": host})
        assert status == 200, (host, body)
        assert all(url.startswith(expected + "api/tiles/") for url in json.loads(body)["tiles"]), body
        status, _, body = request_from("127.0.0.2", nginx.port, "/ogc/", {"Host": host})
        hrefs = [link["href"] for link in json.loads(body)["links"]]
        assert status == 200 and hrefs and all(href.startswith(expected + "ogc") for href in hrefs), hrefs
    status, _, body = request_from("127.0.0.2", nginx.port, "/api/tiles.json", {"Host": "evil.example"})
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"
