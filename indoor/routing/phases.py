"""Where an uncached route's time goes: one figure per phase, logged on the route's line.

Phases (milliseconds, summed over a request's parts): `versions` (the data versions and active
closures), `cache_read` (the worker's LRU and Redis reads), `snap` (places to vertices, one
snapshot), `search` (the paths' snapshot and searches, less the path read), `path_read` (the
path's edges, geometry and levels: SQL or the index's arrays), `itinerary` (legs, names,
maneuvers), `encode` (JSON), `cache_write` (Redis and the LRU). `make bench` reports their
medians beside the uncached route row.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

NAMES = ("versions", "cache_read", "snap", "search", "path_read", "itinerary", "encode", "cache_write")


class Phases:
    def __init__(self):
        self.ms = dict.fromkeys(NAMES, 0.0)
        self.lines: list[dict] = []  # route lines waiting for the phases after them (cache writes)
        self.places_read = False  # the places were read from the database (not the cache or memory)

    @contextmanager
    def timed(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] += (time.perf_counter() - started) * 1000

    def add(self, name: str, ms: float) -> None:
        self.ms[name] += ms

    def emit(self, log: logging.Logger) -> None:
        """The waiting route lines, each with every phase of the request."""
        fields = {f"{name}_ms": round(value, 3) for name, value in self.ms.items()}
        # The path read is timed inside the search: `search` is what is left of it.
        fields["search_ms"] = round(max(self.ms["search"] - self.ms["path_read"], 0.0), 3)
        fields["places_read"] = self.places_read
        for extra in self.lines:
            log.info("route", extra={**extra, **fields})
        self.lines.clear()
