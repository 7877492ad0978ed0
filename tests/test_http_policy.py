"""What a browser and a proxy see: security headers, CORS allow-list, trusted hosts, real client address."""

import logging

import pytest

from indoor import create_app
from tests.conftest import TEST_RATE_LIMITS


@pytest.fixture
def make_app(database_url, redis_url, flushed_redis_db):
    apps = []

    def make(**config):
        settings = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_FORMAT": "text", **TEST_RATE_LIMITS}
        settings["RATELIMIT_STORAGE_URL"] = flushed_redis_db()  # counters of this app alone
        app = create_app({**settings, **config})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["indoor.db"].close()


def test_every_response_carries_the_security_headers(make_app):
    client = make_app(RATELIMIT_DEFAULT="1/hour").test_client()
    responses = [
        client.get("/api/health/"),
        client.get("/api/openapi.json"),
        client.get("/api/openapi.json"),  # 429
        client.get("/api/nope"),  # 404
        client.post("/api/health/"),  # 405
    ]
    assert [r.status_code for r in responses] == [200, 200, 429, 404, 405]
    for response in responses:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Request-ID"]


def test_cors_answers_only_the_allowed_origins(make_app):
    client = make_app(CORS_ORIGINS="https://maps.example.org, https://kiosk.example.org/").test_client()

    allowed = client.get("/api/health/ready", headers={"Origin": "https://kiosk.example.org"})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://kiosk.example.org"
    assert "Origin" in allowed.headers.get("Vary", "")
    exposed = {h.strip().lower() for h in allowed.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "x-cache", "retry-after"} <= exposed
    assert "Access-Control-Allow-Credentials" not in allowed.headers

    for origin in ["https://evil.example.org", "https://maps.example.org.evil.net", "null"]:
        refused = client.get("/api/health/ready", headers={"Origin": origin})
        assert refused.status_code == 200  # the browser, not the server, withholds the body
        assert "Access-Control-Allow-Origin" not in refused.headers, origin


def test_cors_preflight_for_an_event_stream_resume(make_app):
    client = make_app(CORS_ORIGINS="https://maps.example.org", RATELIMIT_DEFAULT="1/hour").test_client()
    headers = {
        "Origin": "https://maps.example.org",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "last-event-id",
    }
    # Preflights are not counted against the rate limit: three of them with a limit of 1/hour.
    for _ in range(3):
        preflight = client.options("/api/openapi.json", headers=headers)
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://maps.example.org"
        assert "last-event-id" in preflight.headers["Access-Control-Allow-Headers"].lower()
        assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert client.get("/api/openapi.json", headers={"Origin": "https://maps.example.org"}).status_code == 200


def test_no_cors_origins_means_no_cross_origin_access(make_app):
    response = make_app().test_client().get("/api/health/", headers={"Origin": "https://maps.example.org"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_trusted_hosts_refuse_other_host_names(make_app):
    client = make_app(TRUSTED_HOSTS="maps.example.org,localhost").test_client()
    assert client.get("/api/health/", headers={"Host": "maps.example.org"}).status_code == 200
    # An entry without a port: the port the server listens on (gunicorn's bind), never another.
    listening = "http://localhost:8000"  # SERVER_PORT 8000
    assert client.get("/api/health/", headers={"Host": "localhost:8000"}, base_url=listening).status_code == 200
    assert client.get("/api/health/", headers={"Host": "localhost:8001"}, base_url=listening).status_code == 400
    refused = client.get("/api/health/", headers={"Host": "evil.example.net"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "bad_request"
    assert "Traceback" not in refused.get_data(as_text=True)


def _client_address_seen(app, remote_addr: str, forwarded_for: str | None, caplog) -> str:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="indoor.access"):
        response = app.test_client().get(
            "/api/openapi.json", headers=headers, environ_base={"REMOTE_ADDR": remote_addr}
        )
    assert response.status_code == 200
    (line,) = [r for r in caplog.records if r.name == "indoor.access"]
    return line.client


def test_client_address_believes_only_the_trusted_proxy_hops(make_app, caplog):
    # No proxy configured: X-Forwarded-For is whatever the client wrote, so it is ignored.
    direct = make_app()
    assert _client_address_seen(direct, "198.51.100.7", "203.0.113.9", caplog) == "198.51.100.7"

    # One proxy (nginx appends the address it saw): its entry is believed, the client's own are not.
    behind_nginx = make_app(TRUSTED_PROXY_COUNT=1)
    assert _client_address_seen(behind_nginx, "10.0.0.2", "203.0.113.9, 198.51.100.7", caplog) == "198.51.100.7"
    assert _client_address_seen(behind_nginx, "10.0.0.2", "198.51.100.7", caplog) == "198.51.100.7"

    # Two proxies (a load balancer, then nginx): the second entry from the right.
    behind_two = make_app(TRUSTED_PROXY_COUNT=2)
    assert _client_address_seen(behind_two, "10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1", caplog) == "198.51.100.7"
