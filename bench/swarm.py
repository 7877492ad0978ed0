"""Many concurrent SSE clients on asyncio raw sockets (cheap: one bench process holds 1,000+),
while threads sample the worker's RSS and the service's database connections."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from bench.machine import rss_kib

HEARTBEAT = b": keep-alive"
FEATURES = b"event: features"
END = b"event: end"


@dataclass
class ClientOutcome:
    connected: bool = False
    status: int = 0
    heartbeat_at: float | None = None  # seconds after the request
    first_event_at: float | None = None
    nbytes: int = 0
    ended_early: bool = False  # the server closed the stream before we hung up
    saw_end: bool = False  # ... after an `end` event (complete), or not (cut short)
    longest_silence: float = 0.0  # seconds between two arrivals of bytes, after the headers
    error: str | None = None


async def _one(host: str, port: int, path: str, hold_until: float, outcome: ClientOutcome, ramp: asyncio.Semaphore):
    started = time.monotonic()
    try:
        async with ramp:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=30)
        outcome.connected = True
        writer.write(
            (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n").encode("ascii")
        )
        await writer.drain()
        tail = b""
        header_done = False
        last_at = None
        while True:
            remaining = hold_until - time.monotonic()
            if remaining <= 0:
                break
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=remaining)
            except TimeoutError:
                break
            if not data:
                outcome.ended_early = True
                break
            outcome.nbytes += len(data)
            window = tail + data
            if not header_done:
                end = window.find(b"\r\n\r\n")
                if end < 0:
                    tail = window  # headers are small: keep them all until complete
                    continue
                header_done = True
                try:
                    outcome.status = int(window.split(b" ", 2)[1])
                except (IndexError, ValueError):
                    outcome.status = -1
                window = window[end + 4 :]  # only the body counts (`Connection: keep-alive` is a header)
            now = time.monotonic() - started
            if last_at is not None:
                outcome.longest_silence = max(outcome.longest_silence, now - last_at)
            last_at = now
            if outcome.heartbeat_at is None and HEARTBEAT in window:
                outcome.heartbeat_at = now
            if outcome.first_event_at is None and FEATURES in window:
                outcome.first_event_at = now
            if END in window:
                outcome.saw_end = True
            tail = window[-32:]
        writer.close()
    except (TimeoutError, OSError) as exc:
        outcome.error = type(exc).__name__


async def _swarm(host, port, path, n, hold_s, ramp_n):
    hold_until = time.monotonic() + hold_s
    outcomes = [ClientOutcome() for _ in range(n)]
    ramp = asyncio.Semaphore(ramp_n)
    await asyncio.gather(*(_one(host, port, path, hold_until, o, ramp) for o in outcomes))
    return outcomes


@dataclass
class Sampler:
    """Samples RSS of a pid and a SQL count every `every` seconds in a thread."""

    pid: int
    conn: object
    count_sql: str
    every: float = 0.1
    rss: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _run(self):
        with self.conn.cursor() as cur:
            while not self._stop.is_set():
                value = rss_kib(self.pid)
                if value is not None:
                    self.rss.append(value)
                cur.execute(self.count_sql)
                self.counts.append(cur.fetchone())
                self._stop.wait(self.every)


def run_swarm(host: str, port: int, path: str, n: int, hold_s: float, ramp: int = 200) -> list[ClientOutcome]:
    return asyncio.run(_swarm(host, port, path, n, hold_s, ramp))
