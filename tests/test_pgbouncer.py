"""The service through a real pgbouncer in transaction pooling mode (deploy/pgbouncer.ini)."""

from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from scripts.services import PgBouncer
from tests.endpoints import DATABASE_READS, is_unavailable
from tests.http import get, get_json


@pytest.fixture
def bouncer(pg_cluster, workdir):
    bouncer = PgBouncer(pg_cluster.port, workdir, pool_mode="transaction", pool_size=2).start()
    yield bouncer
    bouncer.stop()


def test_many_app_connections_share_two_server_connections(serve, bouncer, direct_database_url):
    # 50 clients on two server connections: on a loaded machine a route may wait longer than the
    # default ROUTE_QUEUE_WAIT_S and a statement longer than its timeout (each then a correct 503).
    # This test is about sharing the connections, so it waits for them.
    server = serve(
        workers=1,
        DATABASE_URL=bouncer.via(direct_database_url),
        DB_POOL_SIZE=10,
        DB_POOL_TIMEOUT_S=30,
        ROUTE_QUEUE_WAIT_S=30,
        PG_STATEMENT_TIMEOUT_MS=30_000,
    )
    urls = [server.base_url + path for path in DATABASE_READS] * 50
    with ThreadPoolExecutor(max_workers=50) as clients:
        statuses = list(clients.map(lambda url: get(url)[0], urls))
    assert statuses == [200] * len(urls)
    app_clients = [c for c in bouncer.admin("SHOW CLIENTS") if c["application_name"] == "indoor"]
    servers = bouncer.admin("SHOW SERVERS")
    assert len(app_clients) > 2, "the app's pool opened several connections"
    assert 1 <= len(servers) <= 2, "...and pgbouncer served them all with its two"


def test_the_statement_timeout_stays_inside_its_transaction(serve, bouncer, direct_database_url):
    via = bouncer.via(direct_database_url)
    server = serve(workers=1, DATABASE_URL=via, PG_STATEMENT_TIMEOUT_MS=200)
    blocker = psycopg2.connect(direct_database_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE indoor_versions IN ACCESS EXCLUSIVE MODE")
        with ThreadPoolExecutor(max_workers=4) as clients:
            answers = list(clients.map(lambda _: get_json(server.base_url + "/api/health/ready"), range(4)))
        blocker.rollback()
    blocker.close()
    assert all(is_unavailable("/api/health/ready", *answer) for answer in answers), answers
    # Another client of the same pgbouncer gets the same server connections: no 200 ms timeout
    # (a session-level SET would have left one behind), a 400 ms statement runs to the end.
    others = [psycopg2.connect(via) for _ in range(2)]
    try:
        for conn in others:  # two open transactions hold both server connections
            with conn.cursor() as cur:
                cur.execute("SHOW statement_timeout")
                assert cur.fetchone()[0] == "0"
                cur.execute("SELECT pg_sleep(0.4)")
    finally:
        for conn in others:
            conn.close()


def test_the_app_reconnects_after_pgbouncer_restarts(serve, bouncer, direct_database_url):
    server = serve(workers=1, DATABASE_URL=bouncer.via(direct_database_url), PG_CONNECT_TIMEOUT=1)
    path = DATABASE_READS[0]
    assert get(server.base_url + path)[0] == 200
    bouncer.stop()
    assert is_unavailable(path, *get_json(server.base_url + path, timeout=10))
    bouncer.start()
    # The pooled connections died with pgbouncer; the first request after it is back succeeds.
    assert [get(server.base_url + path)[0] for _ in range(5)] == [200] * 5
