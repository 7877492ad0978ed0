"""Rate limits: per client, shared by all workers through Redis, JSON 429s, and never a 500 when Redis is gone."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from config.settings import Settings
from indoor import create_app
from indoor.extensions import ratelimit_storage_url
from scripts.services import free_port
from tests.http import get, get_json


@pytest.fixture
def make_client(database_url, redis_url, flushed_redis_db):
    apps = []

    def make(**config):
        settings = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "text",
            "RATELIMIT_STORAGE_URL": flushed_redis_db(),
        }
        app = create_app({**settings, **config})
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["indoor.db"].close()


def test_over_the_limit_is_a_json_429_with_retry_after(make_client):
    client = make_client(RATELIMIT_DEFAULT="3/minute")
    answers = [client.get("/api/openapi.json") for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in answers)
    assert "Retry-After" not in answers[0].headers  # only a refusal says when to come back
    refused = answers[3]
    assert refused.is_json
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert "3 per 1 minute" in refused.get_json()["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert int(refused.headers["X-RateLimit-Reset"]) > 0
    assert refused.headers["X-Request-ID"]


def test_health_probes_are_never_limited(make_client):
    client = make_client(RATELIMIT_DEFAULT="2/minute")
    statuses = [client.get(path).status_code for _ in range(20) for path in ("/api/health/", "/api/health/ready")]
    assert statuses == [200] * 40
    assert "X-RateLimit-Limit" not in client.get("/api/health/").headers


def test_the_route_endpoint_has_its_own_stricter_limit(make_client):
    client = make_client(RATELIMIT_DEFAULT="5/minute", RATELIMIT_ROUTE="2/minute")
    route = [client.get("/api/route/?from=1&to=2").status_code for _ in range(3)]
    assert route == [200, 200, 429]
    refused = client.get("/api/route/?from=3&to=4")
    assert refused.status_code == 429 and refused.headers["X-RateLimit-Limit"] == "2"
    # The default limit still holds elsewhere, untouched by the route's budget.
    others = [client.get("/api/openapi.json").status_code for _ in range(6)]
    assert others == [200] * 5 + [429]


def test_limits_are_per_client_address(make_client):
    client = make_client(RATELIMIT_DEFAULT="2/minute")
    first = [
        client.get("/api/openapi.json", environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code for _ in range(3)
    ]
    second = [
        client.get("/api/openapi.json", environ_base={"REMOTE_ADDR": "198.51.100.2"}).status_code for _ in range(3)
    ]
    assert first == [200, 200, 429] and second == [200, 200, 429]


def test_rate_limit_storage_is_redis_on_its_own_db_number(database_url, redis_server):
    storage = redis.Redis.from_url(redis_server.url(5))
    storage.flushdb()
    client = create_app(
        {"DATABASE_URL": database_url, "REDIS_URL": redis_server.url(4), "LOG_FORMAT": "text"}
    ).test_client()
    assert client.get("/api/openapi.json").status_code == 200
    keys = [k.decode() for k in storage.keys("*")]
    assert keys and all(k.startswith("LIMITS:LIMITER/indoor/") for k in keys), keys
    assert not any(k.startswith(b"LIMITS") for k in redis.Redis.from_url(redis_server.url(4)).keys("*"))
    storage.close()
    client.application.extensions["indoor.db"].close()


def test_storage_url_defaults():
    def url(**env):
        return ratelimit_storage_url(Settings.from_env(environ=env))

    assert url() == "memory://"
    assert url(REDIS_URL="redis://cache:6379/0") == "redis://cache:6379/1"
    assert url(REDIS_URL="redis://:pw@cache:6379/7") == "redis://:pw@cache:6379/8"
    assert url(REDIS_URL="rediss://cache:6380") == "rediss://cache:6380/1"
    assert url(REDIS_URL="redis://cache/0", RATELIMIT_STORAGE_URL="redis://other/3") == "redis://other/3"


def test_limits_can_be_switched_off(make_client):
    client = make_client(RATELIMIT_DEFAULT="1/minute", RATELIMIT_ENABLED="false")
    assert [client.get("/api/openapi.json").status_code for _ in range(5)] == [200] * 5


def test_redis_unreachable_limits_fall_back_to_memory_and_nothing_fails(database_url):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = create_app(
        {"DATABASE_URL": database_url, "REDIS_URL": dead, "LOG_FORMAT": "text", "RATELIMIT_DEFAULT": "3/minute"}
    ).test_client()
    statuses = [client.get("/api/openapi.json").status_code for _ in range(5)]
    # Still limited (in this process's memory), never a 500.
    assert statuses == [200, 200, 200, 429, 429]
    assert client.get("/api/health/ready").get_json()["cache"] == "unavailable"


def test_workers_share_one_budget_through_redis(serve, flushed_redis_db):
    server = serve(workers=2, RATELIMIT_DEFAULT="10/hour", RATELIMIT_STORAGE_URL=flushed_redis_db(12))
    url = server.base_url + "/api/openapi.json"
    get(url)  # both workers up
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: get_json(url)[0], range(40)))
    # With per-worker (memory) counters two workers would let up to 20 through.
    assert statuses.count(200) == 9 and statuses.count(429) == 31, statuses
