"""Clients that vanish mid-stream cost nothing: 200 and 1,000 streams cut after their first event,
under gunicorn + gevent. (A module of its own so that no other server holds connections to the database.)"""

from __future__ import annotations

import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from tests.feature_data import BIG_LEVEL, query
from tests.http import get_json
from tests.sse_client import Event, EventStream

LEVEL_PATH = f"/api/rooms/?level={BIG_LEVEL}"


def read_first_event_then_vanish(base_url: str) -> int:
    stream = EventStream(base_url, LEVEL_PATH, timeout=120)
    try:
        assert stream.status == 200
        for item in stream.items():
            if isinstance(item, Event):
                return len(item.json()["features"])
        return 0
    finally:
        stream.close(abort=True)


@pytest.fixture
def many_sockets():
    """1,000 clients and the server's 1,000 sockets: lift the open-files limit (inherited by gunicorn)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
@pytest.mark.parametrize("streams", [200, 1000])
def test_streams_aborted_after_their_first_event_leak_nothing(streams, serve, features_url, many_sockets):
    pool_size = 5
    # Tiny batches: each stream has ~1,170 to go (in fetches of at most 4) when its client
    # vanishes, while all the streams share 5 connections: every one is cut mid-stream.
    server = serve(workers=1, DATABASE_URL=features_url, DB_POOL_SIZE=pool_size, DB_POOL_TIMEOUT_S=60, SSE_BATCH_SIZE=2)
    log_path = server.logfile
    with ThreadPoolExecutor(max_workers=streams) as clients:
        firsts = list(clients.map(lambda _: read_first_event_then_vanish(server.base_url), range(streams)))
    assert firsts == [2] * streams

    # Every stream notices its client is gone at its next write and closes (logged by the app).
    deadline = time.monotonic() + 60
    closed = 0
    while time.monotonic() < deadline:
        with open(log_path, "rb") as log:
            closed = log.read().count(b"event stream closed before its end")
        if closed >= streams:
            break
        time.sleep(0.2)
    assert closed == streams

    def activity():
        rows = query(
            features_url,
            "SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = 'indoor' AND datname = current_database()",
        )
        return [row[0] for row in rows], [row[1] for row in rows]

    states, _ = activity()
    assert len(states) <= pool_size
    assert "idle in transaction" not in states and "idle in transaction (aborted)" not in states
    # The server still answers...
    status, body = get_json(server.base_url + "/api/rooms/?limit=1")
    assert status == 200 and body["numberReturned"] == 1
    # ...and all five pooled connections are free: hold a lock, and five requests must each get
    # a connection and wait in PostgreSQL at once (a leaked slot would leave only four).
    blocker = psycopg2.connect(features_url)
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE indoor_versions IN ACCESS EXCLUSIVE MODE")
            with ThreadPoolExecutor(max_workers=pool_size) as clients:
                ready = [clients.submit(get_json, server.base_url + "/api/health/ready") for _ in range(pool_size)]
                waiting = 0
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and waiting < pool_size:
                    waiting = activity()[1].count("Lock")
                    threading.Event().wait(0.05)
                blocker.rollback()
                assert waiting == pool_size
                assert [f.result()[0] for f in ready] == [200] * pool_size
    finally:
        blocker.close()
    states, _ = activity()
    assert len(states) <= pool_size and all(state == "idle" for state in states), states
