"""A statement over PG_STATEMENT_TIMEOUT_MS: a quick 503 for that request, the worker serves on."""

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
from psycopg2 import sql as pgsql

from tests.conftest import run_cli
from tests.endpoints import DATABASE_READS, NO_DATABASE, TABLES_READ, is_unavailable
from tests.http import get, get_json, send_json


def test_a_statement_over_the_timeout_is_a_503_and_the_next_requests_succeed(serve, database_url, sql):
    server = serve(workers=1, PG_STATEMENT_TIMEOUT_MS=300, DB_POOL_SIZE=3, DB_POOL_TIMEOUT_S=30)
    assert all(get(server.base_url + path)[0] == 200 for path in DATABASE_READS)
    blocker = psycopg2.connect(database_url)
    with blocker.cursor() as cur, ThreadPoolExecutor(max_workers=12) as clients:
        # Every read now waits on a lock that this test holds until it has seen the answers.
        tables = pgsql.SQL(", ").join(pgsql.Identifier(t) for t in TABLES_READ)
        cur.execute(pgsql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(tables))
        slow = [(path, clients.submit(get_json, server.base_url + path)) for path in DATABASE_READS for _ in range(4)]
        quick = [clients.submit(get, server.base_url + path) for path in NO_DATABASE for _ in range(10)]
        answers = [(path, *future.result(timeout=20)) for path, future in slow]
        assert [f.result()[0] for f in quick] == [200] * len(quick)  # the worker served others meanwhile
        blocker.rollback()
    blocker.close()
    for path, status, body in answers:
        assert is_unavailable(path, status, body), (path, status, body)
        assert "statement timeout" in (body.get("database") or body["error"]["message"])
    # The lock is gone: the same requests succeed again at once, on the same pool.
    assert [get(server.base_url + path)[0] for path in DATABASE_READS for _ in range(5)] == [200] * 5 * len(
        DATABASE_READS
    )
    # Nothing of the cancelled statements is left running or holding a transaction open. (Through
    # pgbouncer its own checks run briefly on server connections named after their last client,
    # so wait, boundedly, for a quiet moment rather than sampling once.)
    deadline = time.monotonic() + 10
    while True:
        leftovers = sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'indoor' AND pid <> pg_backend_pid() "
            "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
        )[0][0]
        if leftovers == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert leftovers == 0


def test_a_closure_write_over_the_timeout_is_a_503_and_closes_nothing(serve, database_url, direct_database_url, sql):
    """An operator closing a room while its table is locked (or on a campus where resolving it is
    slow): the same 503 as a read, with Retry-After, and no closure written; then it works."""
    made = run_cli(direct_database_url, "token", "create", "--name", "timeout-operator", "--scope", "closures:write")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    server = serve(workers=1, PG_STATEMENT_TIMEOUT_MS=300)
    (room,), *_ = sql("SELECT ogc_fid FROM room_points WHERE category = 'elevator' ORDER BY ogc_fid LIMIT 1")
    before = sql("SELECT count(*) FROM indoor_closures")[0][0]
    close = [server.base_url + "/api/closures/", {"rooms": [room], "reason": "timeout test"}]
    blocker = psycopg2.connect(database_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE room_points IN ACCESS EXCLUSIVE MODE")
        status, headers, body = send_json(*close, token=token)
        blocker.rollback()
    blocker.close()
    assert status == 503, body
    assert body["error"]["code"] == "unavailable" and "statement timeout" in body["error"]["message"]
    assert headers.get("Retry-After") == "1"
    assert sql("SELECT count(*) FROM indoor_closures")[0][0] == before, "nothing was closed"
    status, _, body = send_json(*close, token=token)
    assert status == 201, body
    closure = server.base_url + f"/api/closures/{body['closure']['id']}"
    assert send_json(closure, None, token=token, method="DELETE")[0] == 204
