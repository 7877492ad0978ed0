"""Prometheus metrics: request counts and latencies per endpoint, the route cache, pgRouting time,
the pool, open SSE streams. `/metrics` serves them when METRICS_ENABLED.

Under gunicorn every worker is a process of its own: with PROMETHEUS_MULTIPROC_DIR set (the
gunicorn config sets it when metrics are enabled) each worker writes its values to files there and
a scrape of any worker sums them all. Other modules call the `observe_*`/`sse_*` functions below;
they cost a few microseconds and work whether or not the endpoint is enabled.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from indoor.errors import NotFound

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})

HTTP_REQUESTS = Counter(
    "indoor_http_requests",
    "Requests answered, by endpoint (URL rule), method and status",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "indoor_http_request_duration_seconds",
    "Time to the response headers, by endpoint (URL rule)",
    ["endpoint", "method"],
    buckets=_LATENCY_BUCKETS,
)
ROUTE_CACHE = Counter("indoor_route_cache_lookups", "Route cache lookups, by result (hit or miss)", ["result"])
PGROUTING_TIME = Histogram(
    "indoor_pgrouting_duration_seconds", "Time spent in pgRouting for one computed route", buckets=_LATENCY_BUCKETS
)
ROUTE_SEARCHES = Counter(
    "indoor_route_searches", "Computed routes, by how the path was found (overlay, window, full_graph)", ["method"]
)
OVERLAY_BUILDS = Counter(
    "indoor_route_overlay_builds",
    "Route overlay build attempts, by result (built, fresh, busy, recent, failed)",
    ["result"],
)
OVERLAY_BUILD_TIME = Histogram(
    "indoor_route_overlay_build_seconds",
    "Time to build the route overlay",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 150, 600),
)
POOL_SIZE = Gauge("indoor_db_pool_size", "Database connections allowed (all workers)", multiprocess_mode="livesum")
POOL_IN_USE = Gauge("indoor_db_pool_in_use", "Database connections checked out", multiprocess_mode="livesum")
POOL_WAITING = Gauge(
    "indoor_db_pool_waiting", "Requests waiting for a database connection", multiprocess_mode="livesum"
)
SSE_OPEN = Gauge("indoor_sse_streams_open", "Server-Sent Event streams open now", multiprocess_mode="livesum")
SSE_STREAMS = Counter("indoor_sse_streams", "SSE streams ended, by outcome (completed or disconnected)", ["outcome"])
SSE_FEATURES = Counter("indoor_sse_features_sent", "Features sent on SSE streams")

_POOL_GAUGES = {"size": POOL_SIZE, "in_use": POOL_IN_USE, "waiting": POOL_WAITING}


# -- what other modules call -----------------------------------------------------------------


def observe_route(pgrouting_s: float | None, cache_hit: bool, method: str | None = None) -> None:
    """One route answered: from the cache (`cache_hit`), or computed in `pgrouting_s` seconds,
    its path found by `method` (overlay, window, full_graph; None: no search was needed)."""
    ROUTE_CACHE.labels("hit" if cache_hit else "miss").inc()
    if pgrouting_s is not None:
        PGROUTING_TIME.observe(pgrouting_s)
    if method is not None:
        ROUTE_SEARCHES.labels(method).inc()


def observe_overlay_build(result: str, seconds: float | None = None) -> None:
    """One overlay build attempt: `result` built (taking `seconds`), fresh, busy, recent, locked or failed."""
    OVERLAY_BUILDS.labels(result).inc()
    if seconds is not None:
        OVERLAY_BUILD_TIME.observe(seconds)


def sse_stream_opened() -> None:
    SSE_OPEN.inc()


def sse_stream_closed(features_sent: int, disconnected: bool) -> None:
    """Call exactly once per opened stream, from the generator's `finally`."""
    SSE_OPEN.dec()
    SSE_STREAMS.labels("disconnected" if disconnected else "completed").inc()
    SSE_FEATURES.inc(features_sent)


def observe_pool(name: str, delta: int) -> None:
    """Database(observe=...) hook: `in_use`, `waiting` or `size` changed by `delta`."""
    _POOL_GAUGES[name].inc(delta)


# -- the endpoint ----------------------------------------------------------------------------


def init_app(app: Flask, settings) -> None:
    if not settings.metrics_enabled:
        return
    app.after_request(_count_request)
    app.add_url_rule("/metrics", "metrics", _metrics_view, methods=["GET"])


def _count_request(response):
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    method = request.method if request.method in _METHODS else "other"
    HTTP_REQUESTS.labels(rule, method, str(response.status_code)).inc()
    started = g.get("started")
    if started is not None:
        HTTP_LATENCY.labels(rule, method).observe(time.perf_counter() - started)
    return response


def _metrics_view():
    # For the scraper on the private network only: anything that came through a proxy (the
    # public nginx sets X-Forwarded-For) is told there is nothing here.
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        raise NotFound()
    return Response(render(), mimetype=CONTENT_TYPE_LATEST)


def render() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(_WithHitRatio(registry))


class _WithHitRatio:
    """The registry's families plus the route cache hit ratio, derived at scrape time."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        hits = lookups = 0.0
        for family in self.registry.collect():
            if family.name == "indoor_route_cache_lookups":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        lookups += sample.value
                        hits += sample.value if sample.labels.get("result") == "hit" else 0.0
            yield family
        yield GaugeMetricFamily(
            "indoor_route_cache_hit_ratio",
            "Route cache hits / lookups since the workers started (0 before the first lookup)",
            value=hits / lookups if lookups else 0.0,
        )
