"""Behind the real nginx with deploy/nginx.conf: real client addresses, request ids, no public /metrics."""

import http.client
import json
import re
import time

import pytest

from scripts.services import ROOT_DIR, NginxServer
from tests.http import get


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
