"""Server-Sent Events: framing, heartbeats while a batch is pending, Last-Event-ID, 204 at the end.

The stream is a generator of byte chunks. It never holds a database connection across a
`yield`: each fetch runs one short transaction in a background greenlet (a thread outside
gevent), which gives the connection back before its rows are framed. While the stream waits
for a fetch, it sends a `: keep-alive` comment every `heartbeat_s`, so proxies and browsers see
a live connection even when the database is slow. The next fetch runs while the current
batches are being written, so the database and the socket work in parallel. A client that
goes away is noticed at the next write: the server closes the generator, and a fetch still in
flight finishes on its own and returns its connection (the statement timeout bounds it)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from flask import Response, request, stream_with_context

from indoor import metrics
from indoor.db import DatabaseUnavailable, gevent_active
from indoor.errors import BadRequest
from indoor.http import params

log = logging.getLogger("indoor.sse")  # the name README and log pipelines know

CONTENT_TYPE = "text/event-stream"
HEARTBEAT = b": keep-alive\n\n"
_LAST_EVENT_ID_MAX = 64


def retry_frame(retry_ms: int) -> bytes:
    return b"retry: %d\n\n" % int(retry_ms)


def event_frame(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One event. `data` is one line of JSON; should it ever hold a line break, each line
    becomes a `data:` line of its own (which EventSource joins back with newlines)."""
    head = b"" if event_id is None else b"id: " + event_id.encode() + b"\n"
    head += b"event: " + event.encode() + b"\n"
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        return head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
    return head + b"data: " + data + b"\n\n"


def features_frame(items: list[bytes], event_id: str) -> bytes:
    """A `features` event built in one copy from the Features' bytes (PostGIS JSON: no line breaks)."""
    parts = [b"id: ", event_id.encode(), b'\nevent: features\ndata: {"type":"FeatureCollection","features":[']
    for i, item in enumerate(items):
        if i:
            parts.append(b",")
        parts.append(item)
    parts.append(b"]}\n\n")
    return b"".join(parts)


def resume_token() -> tuple[str | None, str]:
    """The position a client resumes from: the `Last-Event-ID` header (what EventSource sends
    on reconnect), else `?lastEventId=`, else `?cursor=`. -> (token or None, its name)."""
    header = request.headers.get("Last-Event-ID")
    if header:
        if len(header) > _LAST_EVENT_ID_MAX or not header.isprintable():
            raise BadRequest("header 'Last-Event-ID' is invalid: not a cursor of this listing")
        return header, "header 'Last-Event-ID'"
    for name in ("lastEventId", "cursor"):
        value = params.arg(name, max_length=_LAST_EVENT_ID_MAX)
        if value:
            return value, f"parameter '{name}'"
    return None, ""


class Background:
    """Run `fn(*args, cancelled=event)` now, in a greenlet under gevent (a thread otherwise); wait
    with a timeout. `cancel()` tells a fetch whose stream is gone not to run its query (it may
    still be queued for a pool slot).

    Exceptions are kept and re-raised by `result()`, so nothing is printed by the gevent hub.
    """

    def __init__(self, fn: Callable, *args):
        self._outcome = None
        self._done = threading.Event()
        self.cancelled = threading.Event()

        def run():
            try:
                self._outcome = (True, fn(*args, cancelled=self.cancelled))
            except BaseException as exc:  # handed to the waiting stream
                self._outcome = (False, exc)
            finally:
                self._done.set()

        if gevent_active():
            import gevent

            gevent.spawn(run)
            gevent.sleep(0)  # let it send its query now: the database works while we write
        else:
            threading.Thread(target=run, name="sse-batch", daemon=True).start()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def cancel(self) -> None:
        self.cancelled.set()

    def result(self):
        ok, value = self._outcome
        if ok:
            return value
        raise value


def wait_with_heartbeats(task: Background, heartbeat_s: float) -> Iterator[bytes]:
    """Yield a keep-alive comment every `heartbeat_s` until `task` is done; return its result."""
    while not task.wait(heartbeat_s):
        yield HEARTBEAT
    return task.result()


# Streams open in this worker (one process, one thread of greenlets: a plain counter). Above
# `readahead_max_streams`, streams stop reading ahead: the database is shared anyway, and each
# stream then holds one batch in memory instead of up to five.
_open_streams = 0


def open_streams() -> int:
    return _open_streams


def event_stream(
    first,
    fetch: Callable,
    cursor_for: Callable[[int | None], str],
    after: int | None,
    *,
    batch_size: int,
    heartbeat_s: float,
    retry_ms: int,
    max_batches_per_fetch: int = 8,
    max_rows_per_fetch: int = 4000,  # 2,000: 0.86x COPY, the database idle between pages; 4,000: 1.09x
    readahead_max_streams: int = 32,
    crowded_batch_size: int = 100,
) -> Response:
    """Stream `first` and every following page: `features` events, then `end`, then close.

    `first` is a page already fetched (so that errors before the stream are plain JSON errors);
    `fetch(last_id, limit)` returns the page of up to `limit` features after `last_id`. Pages
    have `last_id`, `count`, `more` and `batches(n)`; each batch becomes one `features` event
    whose id is the cursor after it, so a reconnect with Last-Event-ID continues exactly after
    the last event received.

    One fetch may bring several batches: when a fetch is still running after the previous
    page has been written (the database, not the client, is the bottleneck), the next one asks
    for twice as many batches, up to `max_batches_per_fetch` and `max_rows_per_fetch`; when the
    client is the slower side, it goes back down to one, so a slow reader keeps at most two
    batches in memory.
    """
    path = request.path
    most_batches = max(1, min(max_batches_per_fetch, max_rows_per_fetch // batch_size))

    # Handed over in a list the generator empties, so that the first page is not kept alive by
    # the closure for the whole stream (1,000 streams x a batch adds up).
    initial = [first]

    def generate():
        global _open_streams
        sent = 0
        last_id = after
        page = initial.pop()
        pending = None
        batches_per_fetch = 1
        finished = False
        started = time.perf_counter()
        _open_streams += 1
        metrics.sse_stream_opened()
        try:
            yield retry_frame(retry_ms)
            while True:
                read_ahead = page.more and _open_streams <= readahead_max_streams
                if read_ahead:
                    pending = Background(fetch, page.last_id, batch_size * batches_per_fetch)
                more, page_last = page.more, page.last_id
                batches, page = page.batches(batch_size), None
                while batches:
                    batch = batches.pop(0)
                    if batch.count:
                        last_id = batch.last_id
                        sent += batch.count
                        frame, batch = features_frame(batch.items, cursor_for(last_id)), None
                        yield frame  # while the socket takes it, the stream holds this frame only
                        frame = None
                if not more:
                    break
                if not read_ahead:  # crowded: fetch the next, smaller batch only now that this one is out
                    batches_per_fetch = 1
                    pending = Background(fetch, page_last, crowded_batch_size)
                elif pending.wait(0):
                    batches_per_fetch = max(1, batches_per_fetch // 2)
                else:
                    batches_per_fetch = min(most_batches, batches_per_fetch * 2)
                page = yield from wait_with_heartbeats(pending, heartbeat_s)
                pending = None
            yield event_frame("end", b'{"count":%d}' % sent, cursor_for(last_id))
            finished = True
        except DatabaseUnavailable as exc:
            # Nothing to answer with any more: close; EventSource resumes from its last id.
            log.warning("event stream stopped: database unavailable (%s)", exc.why, extra={"sent": sent})
        except Exception:
            log.exception("event stream failed", extra={"sent": sent})
        finally:
            _open_streams -= 1
            if pending is not None:
                pending.cancel()  # queued for a connection on behalf of a client that is gone
            # One line per stream: how it ended, what it sent, how long it was open.
            log.info(
                "event stream ended" if finished else "event stream closed before its end",
                extra={
                    "path": path,
                    "features_sent": sent,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "disconnected": not finished,
                },
            )
            metrics.sse_stream_closed(sent, disconnected=not finished)

    response = Response(stream_with_context(generate()), status=200, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def no_content() -> Response:
    """The answer to a resume that is already at the end: EventSource stops reconnecting."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    response.headers["Cache-Control"] = "no-cache"
    return response
