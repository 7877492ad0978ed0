"""Logs as an operator reads them: JSON lines on stdout, one per request, the request id on every line."""

import json
import logging
import time

from indoor import create_app
from scripts.services import free_port
from tests.http import get


def _lines(logfile, expect: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in logfile.read_text().splitlines() if line.strip()]
        if len(lines) >= expect or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_served_logs_are_json_lines_with_request_fields(serve):
    # A database nobody listens on: readiness fails and logs why, inside the request.
    server = serve(workers=1, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x", PG_CONNECT_TIMEOUT=1)
    assert get(server.base_url + "/api/openapi.json", headers={"X-Request-ID": "log-test-1"})[0] == 200
    assert get(server.base_url + "/api/health/ready", headers={"X-Request-ID": "log-test-2"})[0] == 503
    assert get(server.base_url + "/api/health/")[0] == 200
    server.stop()  # flushes; gunicorn's own shutdown lines are part of the output too

    records = [json.loads(line) for line in _lines(server.logfile, 4)]  # every line is JSON
    assert any(r.get("logger") == "gunicorn.error" for r in records), "gunicorn's own lines are JSON too"
    access = [r for r in records if r.get("logger") == "indoor.access"]
    by_id = {r["request_id"]: r for r in access}
    document = by_id["log-test-1"]
    assert document["method"] == "GET" and document["path"] == "/api/openapi.json"
    assert document["status"] == 200 and document["client"] == "127.0.0.1"
    assert isinstance(document["duration_ms"], (int, float)) and document["level"] == "INFO" and document["time"]
    assert by_id["log-test-2"]["status"] == 503
    # Other lines logged while serving a request carry its id.
    why = [r for r in records if r.get("request_id") == "log-test-2" and r.get("logger") != "indoor.access"]
    assert why and why[0]["message"] == "not ready: database connection refused" and why[0]["level"] == "WARNING"
    # A healthy liveness probe is not logged (probes come every few seconds).
    assert all(r["path"] != "/api/health/" for r in access)


def test_extra_fields_of_other_modules_reach_the_log(database_url, capsys):
    for log_format in ("json", "text"):
        app = create_app({"DATABASE_URL": database_url, "LOG_FORMAT": log_format})
        capsys.readouterr()
        with app.test_request_context("/api/rooms/", headers={"X-Request-ID": "stream-7"}):
            app.preprocess_request()
            logging.getLogger("indoor.sse").info(
                "stream end", extra={"features": 1234, "duration_ms": 85.2, "disconnected": True}
            )
        out = capsys.readouterr().out.strip().splitlines()[-1]
        if log_format == "json":
            record = json.loads(out)
            assert record["logger"] == "indoor.sse" and record["message"] == "stream end"
            assert record["features"] == 1234 and record["disconnected"] is True and record["request_id"] == "stream-7"
        else:
            assert "indoor.sse [stream-7] stream end" in out
            assert "features=1234" in out and "disconnected=True" in out and "duration_ms=85.2" in out
        app.extensions["indoor.db"].close()
