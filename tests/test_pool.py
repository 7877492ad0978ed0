"""The pool under gunicorn's gevent worker, as deployed: waits instead of failing, never blocks the worker."""

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from indoor.db import DatabaseUnavailable
from indoor.extensions import get_db
from tests.http import get, get_json


def test_200_concurrent_requests_share_a_pool_of_5(serve, database_url, service_connections):
    others = service_connections()  # held by apps of earlier tests in this process
    server = serve(workers=1, DB_POOL_SIZE=5, DB_POOL_TIMEOUT_S=30)
    # Hold the versions table so that every readiness query waits in the database: the first
    # five requests hold the whole pool and the other 195 queue for a connection.
    blocker = psycopg2.connect(database_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE indoor_versions IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(max_workers=200) as clients:
            futures = [clients.submit(get_json, server.base_url + "/api/health/ready") for _ in range(200)]
            threading.Event().wait(0.3)
            blocker.rollback()  # release: the queue drains through 5 connections
            results = [f.result() for f in futures]
    blocker.close()
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
    assert all(body["database"] == "ok" for _, body in results)
    # Never more than the pool's five connections from the worker.
    ours = service_connections() - others
    assert 1 <= len(ours) <= 5, ours


def test_a_slow_query_does_not_block_the_worker(serve, database_url):
    server = serve(workers=1, DB_POOL_SIZE=5)
    blocker = psycopg2.connect(database_url)
    with blocker.cursor() as cur, ThreadPoolExecutor(max_workers=30) as clients:
        cur.execute("LOCK TABLE indoor_versions IN ACCESS EXCLUSIVE MODE")
        slow = clients.submit(get, server.base_url + "/api/health/ready")
        threading.Event().wait(0.2)
        # While that request waits inside PostgreSQL, the same single worker serves others.
        quick = [f.result() for f in [clients.submit(get, server.base_url + "/api/health/") for _ in range(20)]]
        still_waiting = not slow.done()
        blocker.rollback()
        assert [status for status, _, _ in quick] == [200] * 20
        assert still_waiting, "the slow request finished before the quick ones: nothing was proven"
        assert slow.result()[0] in (200, 503)
    blocker.close()


def test_pool_exhaustion_answers_503_json_not_a_pool_error(serve, database_url):
    server = serve(workers=1, DB_POOL_SIZE=1, DB_POOL_TIMEOUT_S=0.5)
    blocker = psycopg2.connect(database_url)
    with blocker.cursor() as cur, ThreadPoolExecutor(max_workers=5) as clients:
        cur.execute("LOCK TABLE indoor_versions IN ACCESS EXCLUSIVE MODE")
        futures = [clients.submit(get_json, server.base_url + "/api/health/ready") for _ in range(5)]
        results = [f.result() for f in futures]
        blocker.rollback()
    blocker.close()
    waited_out = [body for status, body in results if status == 503]
    assert waited_out, "with one connection held for 1 s and a 0.5 s wait, some requests must be turned away"
    reasons = sorted(body["database"] for body in waited_out)
    assert all(body["ok"] is False for body in waited_out)
    # The one request holding the connection hits its statement timeout; the rest were refused a connection.
    assert "no free database connection" in reasons
    assert set(reasons) <= {"no free database connection", "statement timeout"}


def test_a_page_read_in_one_round_trip_keeps_its_settings_to_itself(app):
    """A listing page is read as one query string with its settings (one round trip); the
    timeout and JIT setting apply to it, a statement over the timeout fails as the others do,
    and nothing stays set on the connection for whoever uses it next."""
    with app.app_context():
        database = get_db()

        def settings(cur):
            cur.execute("SELECT current_setting('statement_timeout'), current_setting('jit')")
            return cur.fetchone()

        assert database.read(settings, one_statement=True, timeout_ms=1234) == ("1234ms", "off")
        with pytest.raises(DatabaseUnavailable, match="statement timeout"):
            database.read(lambda cur: cur.execute("SELECT pg_sleep(2)"), one_statement=True, timeout_ms=100)
        with database.connection() as conn:  # the same connection (the pool hands back the last one in)
            assert conn.autocommit is False
            with conn.cursor() as cur:
                timeout, _ = settings(cur)
            conn.rollback()
        assert timeout not in ("1234ms", "100ms")
        assert database.read(settings, timeout_ms=4321) == ("4321ms", "off")  # the usual way still works
