"""Rows: routes while closures are active (issue 20): uncached route p50 with 10 active closures
against none, each on fresh room pairs (keys never asked before), after the route index is ready."""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
import urllib.request

from bench import routing
from bench.context import Context
from bench.report import Row, fmt
from bench.rows_routing import route_index_ready
from bench.stats import median, ms, percentile, ratio

CLOSURES = 10


def _call(ctx: Context, method: str, path: str, token: str, body=None):
    request = urllib.request.Request(
        ctx.base_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the bench's own server
        return response.status, response.read()


def _timed_routes(ctx: Context, pairs) -> tuple[list[float], dict]:
    client = ctx.http()
    times, statuses = [], {}
    for p in pairs:
        resp = client.get(f"/api/route/?from={p.source_room}&to={p.target_room}&profile={p.profile}")
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
        if resp.headers.get("x-cache", "").upper() == "MISS":
            times.append(resp.elapsed)
    return times, statuses


def closures_route(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    row = Row("route_closures", f"uncached route with {CLOSURES} active closures vs none (fresh pairs each)",
              target="p50 <= 1.2 x none")  # fmt: skip
    route_index_ready(ctx)
    token = secrets.token_urlsafe(32)
    conn = ctx.stack.connect()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO indoor_tokens (name, token_sha256, scopes) VALUES ('bench', %s, '{closures:write}')"
            " ON CONFLICT (name) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, revoked_at = NULL",
            (hashlib.sha256(token.encode()).digest(),),
        )
        cur.execute("SELECT id FROM nav_edges_final WHERE kind = 'corridor' ORDER BY id")
        corridors = [r[0] for r in cur.fetchall()]
        n = min(cfg.pairs, 200)
        open_pairs = routing.sample_pairs(cur, n, cfg.seed + 101, cfg.accessible_every)
        closed_pairs = routing.sample_pairs(cur, n, cfg.seed + 202, cfg.accessible_every)
    conn.close()
    open_times, open_statuses = _timed_routes(ctx, open_pairs)
    ids = []
    rnd = random.Random(cfg.seed)
    for edge in rnd.sample(corridors, CLOSURES):
        status, body = _call(ctx, "POST", "/api/closures/", token, {"edges": [edge], "reason": "bench"})
        ids.append(json.loads(body)["closure"]["id"])
    time.sleep(1.0)  # every worker sees them (ROUTE_VERSION_MAX_AGE_S)
    try:
        closed_times, closed_statuses = _timed_routes(ctx, closed_pairs)
    finally:
        for closure_id in ids:
            _call(ctx, "DELETE", f"/api/closures/{closure_id}", token)
    p50_open, p50_closed = median(open_times), median(closed_times)
    r = ratio(p50_closed, p50_open)
    row.reference = f"no closures: p50 {fmt(ms(p50_open), 2)} ms, p99 {fmt(ms(percentile(open_times, 99)), 2)} ms"
    row.measured = (f"p50 {fmt(ms(p50_closed), 2)} ms, p99 {fmt(ms(percentile(closed_times, 99)), 2)} ms "
                    f"({len(closed_times)} uncached of {n}; answers {closed_statuses})")  # fmt: skip
    row.ratio = f"{fmt(r, 2)} x none"
    row.judge(r is not None and r <= 1.2)
    row.data.update(p50_ms=ms(p50_closed), none_p50_ms=ms(p50_open), ratio=r, statuses=closed_statuses,
                    none_statuses=open_statuses)  # fmt: skip
    return [row]
