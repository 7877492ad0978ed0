"""Rows: the campus itself, and room search."""

from __future__ import annotations

import json
import random
import time
from urllib.parse import quote

from bench.context import Context, missing
from bench.report import INFO, Row, fmt
from bench.stats import median, ms, percentile, ratio

# The reference: the same search as one SQL statement on one connection (first page of 100, by id).
SEARCH_SQL = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f ORDER BY id), '[]'::json))
  FROM (SELECT ogc_fid AS id,
               json_build_object('type', 'Feature', 'id', ogc_fid, 'geometry', ST_AsGeoJSON(wkb_geometry)::json,
                                 'properties', json_build_object('name', text, 'level', level, 'building', building)) AS f
          FROM room_points WHERE lower(text) LIKE %s ESCAPE '\\' ORDER BY ogc_fid LIMIT 100) page
"""


def campus_row(campus: dict) -> Row:
    row = Row("campus", "campus (indoor demo), generated for this run", status=INFO)
    row.measured = (f"{campus['edges']:,} edges, {campus['vertices']:,} vertices, {campus['rooms']:,} rooms, "
                    f"{campus['features']:,} floor-plan features; {campus['buildings']} buildings x "
                    f"{campus['levels']} levels, grid {campus['grid']}")  # fmt: skip
    row.reference = f"generated in {campus['demo_s']:.1f} s (init-db {campus['init_db_s']:.1f} s)"
    overlay = next(
        (line for line in campus.get("demo_output", "").splitlines() if line.startswith("build-overlay:")), ""
    )
    if overlay:  # part of the demo's time: the route overlay it builds at the end
        row.reference += f"; route overlay: {overlay.removeprefix('build-overlay: ')}"
    row.data.update(campus)
    return row


def _like(q: str) -> str:
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_queries(cur, n: int, seed: int) -> list[str]:
    cur.execute("SELECT text FROM room_points ORDER BY ogc_fid")
    labels = [r[0] for r in cur.fetchall()]
    rnd = random.Random(seed)
    queries = {"café", "toilets", "Ticket", "lounge b", "zzz"}
    while len(queries) < n and labels:
        label = rnd.choice(labels)
        length = rnd.randint(3, min(6, len(label))) if len(label) >= 3 else len(label)
        start = rnd.randint(0, len(label) - length)
        q = label[start : start + length]
        queries.add(q.lower() if rnd.random() < 0.5 else q)
    return sorted(queries)[:n]


def room_search(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    conn = ctx.stack.connect()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM room_points")
    rooms = cur.fetchone()[0]
    row = Row("room_search", f"room search q= on {rooms:,} rooms (first page, limit 100)", target="p50 < 10 ms")
    queries = search_queries(cur, cfg.search_queries, cfg.seed)
    client = ctx.http()
    probe = f"/api/rooms/?q={quote(queries[0])}"
    why = missing(client.get(probe), probe)
    api_times, sql_times, wrong = [], [], []
    for q in queries:
        if why is None:
            resp = client.get(f"/api/rooms/?q={quote(q)}")
            if resp.status != 200:
                wrong.append((q, f"HTTP {resp.status}"))
                continue
            api_times.append(resp.elapsed)
        started = time.perf_counter()
        cur.execute(SEARCH_SQL, (_like(q.strip()),))  # the API trims q, as a search box should
        expected = cur.fetchone()[0]
        sql_times.append(time.perf_counter() - started)
        if why is None:
            got = json.loads(resp.body).get("features", [])
            names = [f["properties"].get("name", "") for f in got]
            if len(got) != len(expected["features"]) or any(
                q.strip().lower() not in (nm or "").lower() for nm in names
            ):
                wrong.append((q, f"{len(got)} features, expected {len(expected['features'])}"))
    cur.close()
    conn.close()
    sql_p50 = median(sql_times)
    row.reference = f"same search as one SQL statement: p50 {fmt(ms(sql_p50), 2)} ms (one psycopg2 connection)"
    row.data.update(queries=len(queries), sql_p50_ms=ms(sql_p50))
    if why is not None:
        return [row.not_measured(why)]
    p50 = median(api_times)
    row.measured = (
        f"p50 {fmt(ms(p50), 2)} ms, p95 {fmt(ms(percentile(api_times, 95)), 2)} ms ({len(queries)} distinct queries)"  # noqa: E501
    )
    row.ratio = f"{fmt(ratio(p50, sql_p50), 1)} x SQL"
    if wrong:
        row.note = f"{len(wrong)} answers differ from the SQL reference, first: q={wrong[0][0]!r}: {wrong[0][1]}"
    row.judge(p50 is not None and ms(p50) < 10 and not wrong)
    row.data.update(p50_ms=ms(p50), wrong=wrong[:5])
    return [row]
