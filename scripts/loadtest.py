"""`make loadtest`: `make run`'s server (scripts/run.py) on a free port, locustfile.py against it
headless for a short time, the summary, then the server stopped. Exits non-zero when a request
failed or the server did not come up.

LOADTEST_USERS (20), LOADTEST_SPAWN_RATE (10/s), LOADTEST_TIME (30s) shape the run; LOADTEST_CSV
(a path prefix) also writes locust's CSV statistics. Rate limits are off for the served app: the
test comes from one address. DATABASE_URL as for `make run` (unset: the local cluster in .data/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import free_port, stop_process  # noqa: E402


def wait_ready(base_url: str, server: subprocess.Popen, timeout_s: float = 300) -> None:
    """Until /api/health/ready says 200 (run.py may first create the cluster and the demo)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base_url + "/api/health/ready", timeout=2) as response:
                if response.status == 200 and json.load(response)["ok"]:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{base_url} not ready after {timeout_s}s")


def main() -> int:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BIND": f"127.0.0.1:{port}", "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    print(f"loadtest: starting make run's server on {base_url}", flush=True)
    server = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run.py")], cwd=ROOT, env=env)
    try:
        wait_ready(base_url, server)
        locust = [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            str(ROOT / "locustfile.py"),
            "--headless",
            "--host",
            base_url,
            "--users",
            os.environ.get("LOADTEST_USERS", "20"),
            "--spawn-rate",
            os.environ.get("LOADTEST_SPAWN_RATE", "10"),
            "--run-time",
            os.environ.get("LOADTEST_TIME", "30s"),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        if os.environ.get("LOADTEST_CSV"):
            locust += ["--csv", os.environ["LOADTEST_CSV"]]
        return subprocess.call(locust, cwd=ROOT)
    finally:
        stop_process(server, grace_s=30)  # run.py stops gunicorn and its local cluster


if __name__ == "__main__":
    sys.exit(main())
