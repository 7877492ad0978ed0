"""The worst single request a client can send (issue 23): a route back and forth through vias
between two rooms far apart (`from=A&via=B&via=A&via=B&via=A&via=B&to=A`) on the bench campus:
its time and answer (200, or the 422 of the route cost budget), and what 10 of them at once do to
`/api/health/` and to a cached route (their latencies while the 10 run, beside the same idle)."""

from __future__ import annotations

import threading
import time

import redis

from bench.context import Context
from bench.report import INFO, Row, fmt
from bench.stats import median, ms, percentile

# Rooms farthest apart along the campus' width: the westmost and eastmost ones.
FAR_ROOMS = """
(SELECT ogc_fid FROM room_points ORDER BY ST_X(wkb_geometry), ogc_fid LIMIT %(n)s)
UNION ALL
(SELECT ogc_fid FROM room_points ORDER BY ST_X(wkb_geometry) DESC, ogc_fid LIMIT %(n)s)
"""
PARALLEL = 10


def many_vias(a: int, b: int) -> str:
    return f"/api/route/?from={a}&via={b}&via={a}&via={b}&via={a}&via={b}&to={a}"


def _probe(ctx: Context, path: str, stop: threading.Event, out: list) -> None:
    client = ctx.http()
    while not stop.is_set():
        resp = client.get(path)
        out.append((resp.status, resp.elapsed))
        time.sleep(0.02)
    client.close()


def _latencies(samples: list) -> tuple[float | None, float | None, int]:
    times = [elapsed for status, elapsed in samples if status == 200]
    bad = sum(1 for status, _ in samples if status != 200)
    if not times:
        return None, None, bad
    return median(times), percentile(times, 95), bad


def worst_request(ctx: Context) -> list[Row]:
    single = Row("route_worst", "worst request: many vias between the campus' far ends (A,B,A,B,A,B,A)")
    crowd = Row("route_worst_crowd", f"{PARALLEL} worst requests at once: /api/health/ and a cached route meanwhile")
    conn = ctx.stack.connect()
    with conn.cursor() as cur:
        cur.execute(FAR_ROOMS, {"n": PARALLEL + 1})
        rooms = [row[0] for row in cur.fetchall()]
    conn.close()
    west, east = rooms[: PARALLEL + 1], rooms[PARALLEL + 1 :]
    redis.Redis.from_url(ctx.stack.redis.url(0)).flushall()
    client = ctx.http()

    # One, alone and uncached.
    resp = client.get(many_vias(west[0], east[0]))
    code = resp.json().get("error", {}).get("code") if resp.status != 200 else None
    single.measured = (
        f"{fmt(ms(resp.elapsed))} ms, HTTP {resp.status}{f' ({code})' if code else ''}, {len(resp.body) / 1000:.0f} kB"
    )
    single.data.update(status=resp.status, ms=ms(resp.elapsed), bytes=len(resp.body), code=code)
    single.status = INFO

    # Idle latencies of health and of a cached route (asked once first, so it is cached).
    cached = f"/api/route/?from={west[-1]}&to={west[-2]}"
    client.get(cached)
    idle = {"health": [], "cached": []}
    for _ in range(50):
        for name, path in (("health", "/api/health/"), ("cached", cached)):
            r = client.get(path)
            idle[name].append((r.status, r.elapsed))
    client.close()

    # PARALLEL worst requests at once (each uncached: other pairs), probes meanwhile.
    stop = threading.Event()
    busy = {"health": [], "cached": []}
    probes = [
        threading.Thread(target=_probe, args=(ctx, path, stop, busy[name]))
        for name, path in (("health", "/api/health/"), ("cached", cached))
    ]
    results: list = []

    def worst(a: int, b: int) -> None:
        results.append(ctx.http().get(many_vias(a, b)))

    workers = [threading.Thread(target=worst, args=(west[k + 1], east[k + 1])) for k in range(PARALLEL)]
    for t in probes:
        t.start()
    time.sleep(0.3)
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    wall = time.perf_counter() - started
    stop.set()
    for t in probes:
        t.join()
    statuses = sorted({r.status for r in results})
    parts = []
    for name in ("health", "cached"):
        p50_idle, _, _ = _latencies(idle[name])
        p50, p95, bad = _latencies(busy[name])
        parts.append(
            f"{name} p50 {fmt(ms(p50) if p50 else None)} ms / p95 {fmt(ms(p95) if p95 else None)} ms"
            f" (idle p50 {fmt(ms(p50_idle) if p50_idle else None)} ms{f', {bad} not 200' if bad else ''})"
        )
        crowd.data[name] = {"p50_ms": p50 and ms(p50), "p95_ms": p95 and ms(p95), "idle_p50_ms": p50_idle and ms(p50_idle),
                            "not_200": bad, "samples": len(busy[name])}  # fmt: skip
    crowd.measured = f"{PARALLEL} in {wall:.1f} s (HTTP {statuses}); " + "; ".join(parts)
    crowd.data.update(wall_s=wall, statuses=statuses, slowest_ms=ms(max(r.elapsed for r in results)))
    crowd.status = INFO
    return [single, crowd]
