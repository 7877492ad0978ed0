"""Health probes and the one JSON error shape."""

from indoor import create_app
from scripts.services import free_port


def test_liveness_touches_nothing(client):
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}
    assert response.headers["X-Request-ID"]


def test_readiness_reports_database_cache_and_graph_version(client, sql):
    response = client.get("/api/health/ready")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True and body["database"] == "ok" and body["cache"] == "ok"
    assert body["graph_version"] == sql("SELECT version FROM indoor_versions WHERE name = 'graph'")[0][0]


def test_readiness_is_503_json_when_the_database_is_unreachable(redis_url):
    app = create_app(
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
            "REDIS_URL": redis_url,
            "PG_CONNECT_TIMEOUT": 1,
            "LOG_FORMAT": "text",
        }
    )
    response = app.test_client().get("/api/health/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["ok"] is False and body["database"] == "connection refused"
    assert app.test_client().get("/api/health/").status_code == 200


def test_cache_down_is_not_fatal_for_readiness(database_url):
    app = create_app(
        {"DATABASE_URL": database_url, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "LOG_FORMAT": "text"}
    )
    response = app.test_client().get("/api/health/ready")
    assert response.status_code == 200
    assert response.get_json()["cache"] == "unavailable"


def test_request_id_is_echoed_when_sane_and_replaced_when_not(client):
    assert client.get("/api/health/", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    hostile = client.get("/api/health/", headers={"X-Request-ID": "x" * 500}).headers["X-Request-ID"]
    assert hostile != "x" * 500 and len(hostile) == 32


def test_unknown_paths_and_methods_answer_json_errors(client):
    for method, path, status, code in [
        ("get", "/api/nope", 404, "not_found"),
        ("get", "/no-such-page", 404, "not_found"),  # "/" is the map page
        ("post", "/api/health/", 405, "method_not_allowed"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == status
        assert response.is_json
        assert response.get_json()["error"]["code"] == code
        assert "Traceback" not in response.get_data(as_text=True)


def test_trailing_slash_is_optional(client):
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/health/ready/").status_code == 200


def test_an_absurdly_long_url_is_a_json_400_even_through_gunicorn(serve):
    from tests.http import get_json

    server = serve(workers=1)
    status, body = get_json(server.base_url + "/api/rooms/?q=" + "a" * 20000)
    assert status == 400
    assert body["error"]["code"] == "bad_request" and "too long" in body["error"]["message"]
