"""A real browser EventSource (headless Chromium) consumes a stream: every feature once, then it
stops reconnecting (the server answers its automatic resume with 204)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from urllib.parse import quote

from scripts.services import GunicornServer
from tests.feature_data import BIG_LEVEL, BIG_LEVEL_ROOMS, query

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RETRY_MS = 200


def access_log(path) -> list[tuple[str, int]]:
    """(path, status) of every request the app logged, in order."""
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") == "indoor.access":
            entries.append((record["path"], record["status"]))
    return entries


def test_eventsource_in_chromium_gets_every_feature_then_stops_reconnecting(features_url, redis_url, tmp_path):
    expected = [
        r[0] for r in query(features_url, "SELECT ogc_fid FROM room_points WHERE level = %s ORDER BY 1", (BIG_LEVEL,))
    ]
    assert len(expected) == BIG_LEVEL_ROOMS
    report = tmp_path / "report.json"
    log = tmp_path / "gunicorn.log"
    server = GunicornServer(
        {
            "DATABASE_URL": features_url,
            "REDIS_URL": redis_url,
            "SSE_PAGE_REPORT": str(report),
            "SSE_RETRY_MS": str(RETRY_MS),
            "LOG_FORMAT": "json",
        },
        app="tests.sse_page_app:app",
    ).start(log)
    stream_path = f"/api/rooms/?level={BIG_LEVEL}"
    page = f"{server.base_url}/test/page?stream={quote(stream_path, safe='')}"
    browser = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            page,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the browser's helpers go with it
    )
    try:
        deadline = time.monotonic() + 90
        while not report.exists() and time.monotonic() < deadline and browser.poll() is None:
            time.sleep(0.1)
        assert report.exists(), "the page never reported (browser exited or timed out)"
        # Give a browser that would wrongly reconnect ample time (10 retry intervals) to do so.
        time.sleep(10 * RETRY_MS / 1000)
        requests = [entry for entry in access_log(log) if entry[0] == "/api/rooms/"]
    finally:
        try:
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()
        server.stop()
    seen = json.loads(report.read_text())
    assert seen["ids"] == expected, "every feature exactly once, in order"
    assert seen["ends"] == [BIG_LEVEL_ROOMS]
    assert seen["opens"] == 1
    # Error 1: the stream closed after `end` (CONNECTING: the browser retries); error 2: the
    # retry got 204 (CLOSED: it gives up).
    assert seen["states"] == [0, 2]
    assert requests == [("/api/rooms/", 200), ("/api/rooms/", 204)]
