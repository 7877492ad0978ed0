"""gunicorn's gevent worker, with its request-parsing errors as the API's JSON error shape, and
its live streams ended as soon as it is told to stop.

gunicorn answers a request it cannot parse (a duplicate Host, a bad method, an HTTP/2 preface,
obs-fold, Content-Length with Transfer-Encoding...) itself, before the app sees it, with an HTML
page. This worker keeps gunicorn's decision (status, log line, access log) and writes that status
as {"error": {"code": ..., "message": ...}} instead. Imports nothing of the app: the arbiter loads
this class before any worker forks and patches.
"""

from __future__ import annotations

import json
import sys

import gevent
from gunicorn import glogging, util
from gunicorn.workers.ggevent import GeventWorker

# The same codes as indoor/errors.py for the statuses gunicorn writes.
_CODES = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal",
    501: "not_implemented",
}


class _Captured:
    """Stands in for the client's socket while gunicorn writes its HTML page (util.write_error)."""

    def __init__(self):
        self.data = b""

    def gettimeout(self):
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data


def json_error(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": _CODES.get(status, "bad_request"), "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("..." if len(text) > 200 else "")


class JsonErrorsWorker(GeventWorker):
    def handle_exit(self, sig, frame):
        """SIGTERM (a deploy, a scale-down): stop as gunicorn does, and end the live streams now
        rather than after GRACEFUL_TIMEOUT; their clients reconnect elsewhere at once."""
        super().handle_exit(sig, frame)
        gevent.spawn(_end_streams)  # out of the signal handler, as gunicorn does for SIGQUIT

    def handle_error(self, req, client, addr, exc):
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)  # gunicorn decides and logs
        status_line = captured.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if len(status_line) < 3 or not status_line[1].isdigit():
            return
        status, reason = int(status_line[1]), status_line[2]
        if status >= 500 and status != 501:
            message = "internal error"
        else:
            message = f"{reason.lower()}: {_one_line(exc)}" if str(exc) else reason.lower()
        try:
            util.write_nonblock(client, json_error(status, reason, message))
        except Exception:
            self.log.debug("Failed to send error message.")


def _end_streams() -> None:
    # Looked up, not imported: this module loads before the app, and a worker that never
    # opened a live stream has nothing to end.
    events = sys.modules.get("indoor.live.events")
    if events is not None:
        events.end_streams()


class Logger(glogging.Logger):
    """gunicorn's logger, minus the access lines no handler takes. With LOG_FORMAT=json the
    logconfig_dict (gunicorn.conf.py) gives `gunicorn.access` no handler, as the app logs one line
    per request itself; gunicorn still formatted an access line for every request, to drop it."""

    def access(self, resp, req, environ, request_time):
        if self.access_log.hasHandlers():
            super().access(resp, req, environ, request_time)
