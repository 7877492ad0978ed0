"""A cost bound per route request and bounded concurrency of uncached routes per worker.

A route's body, legs and directions grow with its length, and vias multiply it: a request over
ROUTE_MAX_LENGTH_M is refused with a 422 naming the limit. At most ROUTE_MAX_CONCURRENT uncached
routes are computed at once per worker; another waits ROUTE_QUEUE_WAIT_S for a slot and then gets a
JSON 503 with Retry-After, while health checks and cached routes are answered at once."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from indoor import create_app
from tests import strict_json
from tests.conftest import TEST_RATE_LIMITS
from tests.http import get


def _rooms(sql, count: int) -> list[int]:
    return [row[0] for row in sql("SELECT ogc_fid FROM room_points ORDER BY ogc_fid LIMIT %s", (count,))]


@pytest.fixture
def far_rooms(sql):
    """Two rooms on different levels (a route of a few hundred metres on the demo campus)."""
    low = sql("SELECT ogc_fid FROM room_points WHERE level = 0 ORDER BY ogc_fid LIMIT 1")[0][0]
    high = sql("SELECT ogc_fid FROM room_points WHERE level = 2 ORDER BY ogc_fid DESC LIMIT 1")[0][0]
    return low, high


def test_a_route_longer_than_the_budget_is_refused_naming_the_limit(database_url, redis_url, far_rooms):
    low, high = far_rooms
    app = create_app({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_FORMAT": "text", **TEST_RATE_LIMITS})
    try:
        client = app.test_client()
        one = client.get(f"/api/route/?from={low}&to={high}")
        assert one.status_code == 200
        length = strict_json.loads(one.data)["route"]["distance_m"]
    finally:
        app.extensions["indoor.db"].close()
    # The budget between one trip and the same trip there and back three times.
    limited = create_app(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "LOG_FORMAT": "text",
            "ROUTE_MAX_LENGTH_M": str(round(length * 2)),
            **TEST_RATE_LIMITS,
        }
    )
    try:
        client = limited.test_client()
        assert client.get(f"/api/route/?from={low}&to={high}").status_code == 200
        many = f"/api/route/?from={low}&via={high}&via={low}&via={high}&via={low}&via={high}&to={low}"
        for _ in range(2):  # computed, then with every path from the cache: refused both times
            response = client.get(many)
            assert response.status_code == 422
            error = strict_json.loads(response.data)["error"]
            assert error["code"] == "route_too_long"
            assert "ROUTE_MAX_LENGTH_M" in error["message"] and f"{round(length * 2):,}" in error["message"]
    finally:
        limited.extensions["indoor.db"].close()


def _wait_for_a_statement_waiting_on_a_lock(sql, within_s: float = 20.0) -> None:
    """Until a backend waits for a lock. (A fixed sleep was not enough under CI's load: the next
    request reached the slot first, then waited for the lock itself.)"""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no route waited for the locked edges within {within_s} s")


def test_uncached_routes_beyond_the_workers_slots_get_a_quick_503_while_health_and_cached_routes_answer(
    serve, direct_database_url, sql, flushed_redis_db
):
    # An empty cache: places snapped by earlier tests would be read from Redis, and a route with
    # its places known and the route index loaded reads nothing the locks below hold. A statement
    # timeout longer than the test: the slow route waits out the lock, never the clock.
    server = serve(
        workers=1,
        ROUTE_MAX_CONCURRENT=1,
        ROUTE_QUEUE_WAIT_S=0.3,
        PG_STATEMENT_TIMEOUT_MS=30000,
        REDIS_URL=flushed_redis_db(12),
    )
    a, b, c, d, e, f = _rooms(sql, 6)
    assert get(f"{server.base_url}/api/route/?from={a}&to={b}")[0] == 200  # now cached
    # Hold the edges as a slow disk or a long migration would: an uncached route then takes the
    # worker's one slot and waits for the locks in its snap.
    blocker = psycopg2.connect(direct_database_url)
    results = {}
    try:
        with blocker.cursor() as cur:
            # The rooms too: with the route index loaded a path reads no edge, but a place is
            # always snapped from its room.
            cur.execute("LOCK TABLE nav_edges_final, room_points IN ACCESS EXCLUSIVE MODE")
        slow = threading.Thread(
            target=lambda: results.update(slow=get(f"{server.base_url}/api/route/?from={c}&to={d}", timeout=30))
        )
        slow.start()
        _wait_for_a_statement_waiting_on_a_lock(sql)  # the slow one is in its snap: it holds the slot
        started = time.monotonic()
        status, headers, body = get(f"{server.base_url}/api/route/?from={e}&to={f}", timeout=30)
        waited = time.monotonic() - started
        assert status == 503 and headers["Retry-After"] == "1"
        assert strict_json.loads(body)["error"]["code"] == "unavailable"
        assert "too many routes" in strict_json.loads(body)["error"]["message"]
        assert waited < 2.0  # ROUTE_QUEUE_WAIT_S and a little, never the lock's length
        health = get(f"{server.base_url}/api/health/", timeout=5)
        cached = get(f"{server.base_url}/api/route/?from={a}&to={b}", timeout=5)
        assert health[0] == 200 and cached[0] == 200 and cached[1]["X-Cache"] == "HIT"
        assert slow.is_alive()  # all of this while the slow route still waits
    finally:
        blocker.rollback()
        blocker.close()
    slow.join(30)
    assert results["slow"][0] == 200  # the lock gone, the one computing finishes
    assert get(f"{server.base_url}/api/route/?from={e}&to={f}")[0] == 200  # and the slot is free again
