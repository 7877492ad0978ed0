"""Change events pushed to open maps: one watcher per worker fans out to all its streams.

The watcher polls indoor_events every EVENTS_POLL_S (one indexed query on a small table; it
works through pgbouncer in transaction mode, where LISTEN does not), so 1,000 open maps cost
the database one query per poll per worker, not 1,000. When a closure's start or end passes,
it writes that closure's event once (the first worker to see it; `once` keeps it single).
A stream subscribes to the watcher, then replays from the database what its client missed
(`Last-Event-ID`), and holds no database connection while it waits. Ids come from a sequence:
an id read after a higher one committed is a gap that the next polls ask for again for a while.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field

from flask import current_app

from indoor.errors import BadRequest
from indoor.extensions import get_db, get_settings
from indoor.http import sse
from indoor.queries import events as queries

log = logging.getLogger("indoor.events")

_STATE = "indoor.events"
GAP_WAIT_S = 10.0  # how long an id skipped by a poll is asked for again
SUBSCRIBER_BACKLOG = 1000  # a client this far behind is ended (it reconnects and replays)
EXPIRE_EVERY_S = 60.0


@dataclass(eq=False)
class Subscriber:
    building: str | None
    inbox: queue.Queue = field(default_factory=lambda: queue.Queue(SUBSCRIBER_BACKLOG))
    overflowed: bool = False

    def wants(self, building: str | None) -> bool:
        return self.building is None or building is None or building == self.building


# Put in a subscriber's inbox when its worker stops: the stream ends at once.
_CLOSING = (None, None)
_WATCHERS: weakref.WeakSet = weakref.WeakSet()


def end_streams() -> None:
    """End every open stream of this process now (its worker is stopping: gunicorn would wait
    GRACEFUL_TIMEOUT for them, then cut them). Each client reconnects, to a worker that is not
    stopping, with its Last-Event-ID, and loses nothing."""
    for found in list(_WATCHERS):
        found.end_streams()


class Watcher:
    """The worker's one poller (a greenlet under gevent's monkey-patching, a thread otherwise)."""

    def __init__(self, app):
        _WATCHERS.add(self)
        self.closing = False
        self.app = app
        self.subscribers: set[Subscriber] = set()
        self.lock = threading.Lock()
        self.last = None  # the newest id seen
        self.gaps: dict[int, float] = {}
        self.next_boundary: float | None = 0.0  # sweep once at start
        self.expired_at = 0.0
        self.thread = threading.Thread(target=self._run, name="indoor-events", daemon=True)
        self.thread.start()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self.lock:
            self.subscribers.add(subscriber)
            if self.closing:
                subscriber.overflowed = True  # opened while the worker stops: ends at once

    def end_streams(self) -> None:
        with self.lock:
            self.closing = True
            subscribers = list(self.subscribers)
        for subscriber in subscribers:
            subscriber.overflowed = True
            try:
                subscriber.inbox.put_nowait(_CLOSING)
            except queue.Full:
                pass  # it ends on `overflowed` at its next wake

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self.lock:
            self.subscribers.discard(subscriber)

    def _run(self) -> None:
        with self.app.app_context():
            settings = get_settings()
            while True:
                try:
                    self._once(settings)
                except Exception:  # noqa: BLE001 - the database away: try again next poll
                    log.warning("events poll failed", exc_info=True)
                    time.sleep(1.0)
                time.sleep(settings.events_poll_s)

    def _once(self, settings) -> None:
        db = get_db()
        now = time.time()
        if self.next_boundary is not None and now >= self.next_boundary:
            with db.transaction(timeout_ms=5000) as cur:
                queries.sweep(cur)
        if now - self.expired_at >= EXPIRE_EVERY_S:
            with db.transaction(timeout_ms=5000) as cur:
                queries.expire(cur, settings.events_retention_s)
            self.expired_at = now
        if self.last is None:
            self.last = db.read(queries.latest, timeout_ms=2000)
        self.gaps = {k: t for k, t in self.gaps.items() if now - t < GAP_WAIT_S}
        rows, self.next_boundary = db.read(lambda cur: queries.poll(cur, self.last, list(self.gaps)), timeout_ms=2000)
        for event_id, building, data in rows:
            event_id = int(event_id)
            self.gaps.pop(event_id, None)
            if event_id > self.last:
                self.gaps.update({k: now for k in range(self.last + 1, min(event_id, self.last + 1000))})
                self.last = event_id
            self._publish(event_id, building, data)

    def _publish(self, event_id: int, building, data: str) -> None:
        frame = sse.event_frame("change", data.encode(), str(event_id))
        with self.lock:
            subscribers = list(self.subscribers)
        for subscriber in subscribers:
            if subscriber.wants(building):
                try:
                    subscriber.inbox.put_nowait((event_id, frame))
                except queue.Full:
                    subscriber.overflowed = True


def watcher() -> Watcher:
    app = current_app._get_current_object()
    state = app.extensions.setdefault(_STATE, {"lock": threading.Lock(), "watcher": None})
    with state["lock"]:
        if state["watcher"] is None:
            state["watcher"] = Watcher(app)
        return state["watcher"]


def last_event_id(token: str | None, name: str) -> int | None:
    if token is None:
        return None
    if not token.isdigit() or len(token) > 18:
        raise BadRequest(f"{name} must be an event id (a non-negative integer)")
    return int(token)


@dataclass
class Opened:
    subscriber: Subscriber
    watcher: Watcher
    replay: list = field(default_factory=list)  # (id, frame)
    reload: bool = False


def open_stream(building: str | None, after: int | None) -> Opened:
    """Subscribe, then read what the client missed: nothing is lost between the two (a replayed
    event that also arrives live is sent once). Fails as JSON, before the stream starts."""
    found = watcher()
    subscriber = Subscriber(building)
    found.subscribe(subscriber)
    try:
        opened = Opened(subscriber, found)
        if after is not None:
            rows, oldest, newest = get_db().read(lambda cur: queries.replay(cur, after, building), timeout_ms=5000)
            # Older than what is kept (or from another database): the client reloads everything.
            if (oldest is not None and after < oldest - 1) or (newest is not None and after > newest):
                opened.reload = True
            else:
                opened.replay = [(int(i), sse.event_frame("change", d.encode(), str(i))) for i, _, d in rows]
        return opened
    except BaseException:
        found.unsubscribe(subscriber)
        raise


def frames(opened: Opened, heartbeat_s: float, retry_ms: int, max_stream_s: float):
    """The stream's bytes: retry, what was missed, then changes as they come, heartbeats between.
    Ends after `max_stream_s` (the client reconnects with its Last-Event-ID and loses nothing)."""
    subscriber = opened.subscriber
    try:
        yield sse.retry_frame(retry_ms)
        if opened.reload:
            yield sse.event_frame("reload", json.dumps({"reason": "missed events are no longer kept"}).encode())
        replayed = set()
        for event_id, frame in opened.replay:
            replayed.add(event_id)
            yield frame
        if not opened.replay:
            yield sse.HEARTBEAT  # headers and a first byte go out now
        deadline = time.monotonic() + max_stream_s
        while time.monotonic() < deadline and not subscriber.overflowed:
            try:
                event_id, frame = subscriber.inbox.get(timeout=heartbeat_s)
            except queue.Empty:
                yield sse.HEARTBEAT
                continue
            if event_id is None:  # the worker is stopping (end_streams)
                return
            if event_id not in replayed:
                yield frame
    finally:
        opened.watcher.unsubscribe(subscriber)
