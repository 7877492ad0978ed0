"""A frozen database (SIGSTOP: a failing disk or a stuck network does the same) answers nothing
and closes nothing; the server-side statement timeout cannot fire. Our own deadline on every wait
for it (db.py: the statement timeout and WAIT_MARGIN_S) answers readiness and routes with a JSON
503 in about that time instead of holding them for as long as the database is frozen."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests import strict_json
from tests.http import get


def _cluster_pids(datadir: Path) -> list[int]:
    """The postmaster and every process it started (backends, background workers)."""
    postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


@pytest.mark.slow
def test_a_frozen_database_gets_json_503s_within_our_deadline(serve, pg_cluster, sql):
    server = serve(workers=1, PG_STATEMENT_TIMEOUT_MS=1000, PG_CONNECT_TIMEOUT=2, ROUTE_VERSION_MAX_AGE_S=0)
    rooms = [row[0] for row in sql("SELECT ogc_fid FROM room_points ORDER BY ogc_fid LIMIT 4")]
    assert get(f"{server.base_url}/api/health/ready")[0] == 200
    assert get(f"{server.base_url}/api/route/?from={rooms[0]}&to={rooms[1]}")[0] == 200  # pooled connections
    pids = _cluster_pids(pg_cluster.datadir)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for path in ("/api/health/ready", f"/api/route/?from={rooms[2]}&to={rooms[3]}", "/api/rooms/?limit=5"):
            started = time.monotonic()
            status, headers, body = get(f"{server.base_url}{path}", timeout=30)
            took = time.monotonic() - started
            assert status == 503, (path, body)
            assert took < 4.5, (path, took)  # 1 s statement timeout + 1 s margin, or a 2 s connect
            error = strict_json.loads(body)
            assert error.get("error", {}).get("code") == "unavailable" or error.get("ok") is False, body
            assert headers["Content-Type"].startswith("application/json")
        started = time.monotonic()
        assert get(f"{server.base_url}/api/health/", timeout=5)[0] == 200  # liveness: the worker is not stuck
        assert time.monotonic() - started < 1.0
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while get(f"{server.base_url}/api/health/ready", timeout=10)[0] != 200:
        assert time.monotonic() < deadline, "not ready again after the database thawed"
        time.sleep(0.2)
    assert get(f"{server.base_url}/api/route/?from={rooms[2]}&to={rooms[3]}")[0] == 200
