"""Benchmark options, from the environment (`BENCH_SMALL=1 make bench`, `BENCH_DURATION=10 ...`)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BenchConfig:
    small: bool
    # The campus (indoor demo): at least this many edges, rooms and floor-plan features.
    edges: int
    rooms: int
    features: int
    grid: int
    levels: int
    # Routing
    pairs: int  # random room pairs requested once each with the cache empty
    ref_timed: int  # of those, how many are also timed with a full-graph pgr_dijkstra each
    accessible_every: int  # every n-th pair asks for profile=accessible
    # Load (wrk)
    duration_s: float  # per wrk round
    rounds: int  # alternating rounds of subject and reference; medians reported
    concurrency: int  # wrk connections
    latency_samples: int  # sequential requests for a p50
    # Streams
    sse_clients: int
    sse_hold_s: float
    tipg_limits: tuple
    tipg_probe: int  # features followed at the smaller tipg page sizes (0: all)
    search_queries: int
    gdal_page_size: int  # PAGE_SIZE of GDAL's OAPIF driver, the same for ours and tipg
    tiles_per_zoom: int  # tiles per zoom (16-19) in the tile set of the tiles row
    only: tuple  # BENCH_ONLY: run only the row groups whose logged name contains one of these
    workers: int  # gunicorn workers of the main server (deployed default: min(4, cores))
    seed: int

    def as_dict(self) -> dict:
        return asdict(self)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def from_env() -> BenchConfig:
    small = os.environ.get("BENCH_SMALL", "").strip().lower() in ("1", "true", "yes", "on")
    if small:
        d = dict(edges=20_000, rooms=10_000, features=20_000, grid=30, levels=4, pairs=100, ref_timed=15,
                 duration_s=2.0, rounds=1, concurrency=32, latency_samples=300, sse_clients=200, sse_hold_s=5.0,
                 tipg_limits="10000", search_queries=100)  # fmt: skip
    else:
        d = dict(edges=200_000, rooms=100_000, features=200_000, grid=50, levels=4, pairs=500, ref_timed=40,
                 duration_s=5.0, rounds=3, concurrency=64, latency_samples=1000, sse_clients=1000, sse_hold_s=12.0,
                 tipg_limits="1000,10000", search_queries=300)  # fmt: skip
    return BenchConfig(
        small=small,
        edges=_int("BENCH_EDGES", d["edges"]),
        rooms=_int("BENCH_ROOMS", d["rooms"]),
        features=_int("BENCH_FEATURES", d["features"]),
        grid=_int("BENCH_GRID", d["grid"]),
        levels=_int("BENCH_LEVELS", d["levels"]),
        pairs=_int("BENCH_PAIRS", d["pairs"]),
        ref_timed=_int("BENCH_REF_TIMED", d["ref_timed"]),
        accessible_every=_int("BENCH_ACCESSIBLE_EVERY", 5),
        duration_s=_float("BENCH_DURATION", d["duration_s"]),
        rounds=max(1, _int("BENCH_ROUNDS", d["rounds"])),
        concurrency=_int("BENCH_CONCURRENCY", d["concurrency"]),
        latency_samples=_int("BENCH_LATENCY_SAMPLES", d["latency_samples"]),
        sse_clients=_int("BENCH_SSE_CLIENTS", d["sse_clients"]),
        sse_hold_s=_float("BENCH_SSE_HOLD_S", d["sse_hold_s"]),
        tipg_limits=tuple(int(x) for x in os.environ.get("BENCH_TIPG_LIMITS", d["tipg_limits"]).split(",") if x),
        tipg_probe=_int("BENCH_TIPG_PROBE", 40_000),
        search_queries=_int("BENCH_SEARCH_QUERIES", d["search_queries"]),
        gdal_page_size=_int("BENCH_GDAL_PAGE_SIZE", 1000),
        tiles_per_zoom=_int("BENCH_TILES_PER_ZOOM", 25 if small else 100),
        only=tuple(x.strip().lower() for x in os.environ.get("BENCH_ONLY", "").split(",") if x.strip()),
        workers=_int("BENCH_WORKERS", min(4, os.cpu_count() or 1)),
        seed=_int("BENCH_SEED", 6),
    )
