"""`make loadtest` (scripts/loadtest.py + locustfile.py): it starts `make run`'s server, runs every
locust task against it headless, prints the summary, stops the server, and no request fails."""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TASKS = {
    "/api/route/ [random rooms]",
    "/api/route/ [popular rooms]",
    "/api/rooms/?q=",
    "/api/base-floor/ [stream]",
    "/api/health/ready",
}


@pytest.mark.slow
def test_loadtest_runs_every_task_without_a_failure(database_url, redis_url, tmp_path):
    prefix = tmp_path / "locust"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LOADTEST_USERS": "20",
        "LOADTEST_SPAWN_RATE": "20",
        "LOADTEST_TIME": "10s",
        "LOADTEST_CSV": str(prefix),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "loadtest.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Aggregated" in result.stdout + result.stderr  # the summary is printed
    port = int(re.search(r"^loadtest: starting make run's server on http://127\.0\.0\.1:(\d+)", result.stdout, re.M)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # the server was stopped
    with open(f"{prefix}_stats.csv", newline="") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert TASKS <= set(rows), set(rows)
    for name in TASKS | {"Aggregated"}:
        assert int(rows[name]["Request Count"]) > 0, name
        assert int(rows[name]["Failure Count"]) == 0, (name, rows[name])
