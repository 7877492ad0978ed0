"""Rows: the map page in headless Chromium (software WebGL) on the 200,000-feature campus of
bench/client_stream.py, on both of its paths (levels from vector tiles, levels streamed).

Each path is visited BENCH_CLIENT_RUNS times (default 3), the paths taking turns; a row gives the
median and the range, and the 1-minute load average around the visits: software WebGL shares the
CPU with everything else on the machine.
"""

from __future__ import annotations

import os

from bench import client_stream
from bench.context import Context
from bench.report import INFO, Row
from bench.stats import median

PATHS = {"tiles": "levels drawn from vector tiles", "stream": "levels streamed over EventSource"}
# The targets (ms): first features after navigation, a level switch drawn, the longest task.
TARGETS = {"first_drawn_since_navigation_ms": 1000, "level_switch_ms": 500, "longest_task_ms": 200}


def client_rows(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    runs = max(1, int(os.environ.get("BENCH_CLIENT_RUNS", "3")))
    features = 20_000 if cfg.small else 200_000
    result = client_stream.run(
        ctx.stack.cluster, features, 4, list(PATHS), runs, timeout_s=600, log=lambda m: ctx.log(f"map page: {m}")
    )
    size = f"{result['floor_plan_features']:,} floor-plan features, {result['room_points']:,} rooms, 4 levels"
    rows = []
    for path, title in PATHS.items():
        visits = result["visits"][path]
        loads = [load for visit in visits for load in visit["load_average"]]
        problems = [p for visit in visits for p in visit["problems"]]
        note = f"{len(visits)} visits, load average {min(loads)}-{max(loads)}"
        if problems:
            note += f"; page problems: {problems[:3]}"

        def figure(name, visits=visits):
            values = [visit["summary"][name] for visit in visits if visit["summary"][name] is not None]
            return median(values), min(values, default=None), max(values, default=None)

        for key, label, target in (
            ("first_drawn_since_navigation_ms", "first features drawn after navigation", "<= 1,000 ms"),
            ("level_switch_ms", "level switch drawn (slowest of levels 1-3)", "<= 500 ms"),
            ("longest_task_ms", "longest main-thread task of the visit", "<= 200 ms"),
        ):
            mid, low, high = figure(key)
            row = Row(f"client_{path}_{key}", f"map page, {title}: {label} ({size})", target=target)
            row.measured = f"{mid:,.0f} ms (range {low:,}-{high:,})"
            row.note = note
            row.judge(mid <= TARGETS[key] and not problems)
            row.data.update(path=path, runs=[visit["summary"] for visit in visits], load_average=loads)
            rows.append(row)
        mid, low, high = figure("long_tasks")
        row = Row(f"client_{path}_long_tasks", f"map page, {title}: main-thread tasks over 50 ms", status=INFO)
        row.measured = f"{mid:.0f} (range {low}-{high})"
        row.note = note
        rows.append(row)
    return rows
