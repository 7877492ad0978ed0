"""`python -m bench`: set up, measure every row against its reference, print and publish the table."""

from __future__ import annotations

import datetime
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import config, machine, report  # noqa: E402
from bench.context import Context  # noqa: E402
from bench.report import Row  # noqa: E402
from bench.rows_client import client_rows  # noqa: E402
from bench.rows_gis import gis_peers  # noqa: E402
from bench.rows_index_memory import index_memory_rows  # noqa: E402
from bench.rows_live import closure_events, closures_route, page_replan  # noqa: E402
from bench.rows_misc import campus_row, room_search  # noqa: E402
from bench.rows_routing import (  # noqa: E402
    cached_route,
    route_after_edit,
    uncached_route,
    via_and_category_routes,
)
from bench.rows_shapes import shape_rows  # noqa: E402
from bench.rows_streams import floor_sse, json_paging_and_peer, many_clients  # noqa: E402
from bench.rows_worst import worst_request  # noqa: E402
from bench.stack import ServerLog, Stack, raise_fd_limit  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "BENCHMARKS.md"


def _guard(ctx: Context, name: str, fn, *args) -> list[Row]:
    """A row that crashes is reported as not measured, with the reason; the others still run."""
    if ctx.cfg.only and not any(part in name.lower() for part in ctx.cfg.only):
        return []
    ctx.log(f"{name} ...")
    started = time.perf_counter()
    try:
        rows = fn(ctx, *args)
    except Exception as exc:
        traceback.print_exc()
        rows = [Row(name, name).not_measured(f"the bench failed: {type(exc).__name__}: {str(exc)[:200]}")]
    for row in rows:
        row.data["row_s"] = round(time.perf_counter() - started, 1)
    return rows


def command_line(cfg) -> str:
    env = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_")]
    return " ".join([*env, "make bench"])


def main() -> int:
    cfg = config.from_env()
    ctx = Context(cfg=cfg, stack=None)
    fds = raise_fd_limit()
    ctx.log(f"bench ({'small' if cfg.small else 'full'}): {cfg.as_dict()}; open files limit {fds}")
    stack = Stack(log=ctx.log)
    ctx.stack = stack
    rows: list[Row] = []
    keep = os.environ.get("BENCH_KEEP", "") == "1"
    try:
        ctx.log(f"starting PostgreSQL and Redis in {stack.workdir} ...")
        stack.start_services()
        ctx.log("generating the campus ...")
        campus = stack.generate_campus(cfg)
        ctx.log(campus["demo_output"])
        conn = stack.connect()
        with conn.cursor() as cur:
            facts = machine.facts(cur, ROOT)
        conn.close()
        rows.append(campus_row(campus))
        ctx.log(f"starting gunicorn ({cfg.workers} gevent workers) ...")
        # TRUSTED_HOSTS: OGC links are then absolute (GDAL 3.6 cannot follow path-only ones).
        ctx.server_log = ServerLog(stack.log_path)
        server = stack.start_app(cfg.workers, TRUSTED_HOSTS="127.0.0.1")
        ctx.base_url = server.base_url
        rows += _guard(ctx, "room search", room_search)
        rows += _guard(ctx, "uncached route", uncached_route)
        rows += _guard(ctx, "cached route", cached_route)
        rows += _guard(ctx, "route after an edit", route_after_edit)
        rows += _guard(ctx, "via and category routes", via_and_category_routes)
        rows += _guard(ctx, "routes with closures", closures_route)
        rows += _guard(ctx, "re-plan on a closure in the map page", page_replan)
        rows += _guard(ctx, "worst request", worst_request)
        rows += _guard(ctx, "floor-plan SSE", floor_sse)
        rows += _guard(ctx, "JSON paging and tipg", json_paging_and_peer)
        rows += _guard(ctx, "GIS clients and tipg", gis_peers)
        stack.stop_app(server)
        rows += _guard(ctx, "route index memory", index_memory_rows)
        rows += _guard(ctx, "campus shapes", shape_rows)
        rows += _guard(ctx, "concurrent SSE clients", many_clients)
        rows += _guard(ctx, "map page in Chromium", client_rows)
        rows += _guard(ctx, "closure change events", closure_events)
    finally:
        stack.close(keep=keep)
        if keep:
            ctx.log(f"kept {stack.workdir}")
    elapsed = time.perf_counter() - ctx.started
    table = report.markdown_table(_ordered(rows))
    print("\n" + table + "\n")
    day = datetime.date.today().isoformat()
    out = RESULTS / (f"{day}-small.json" if cfg.small else f"{day}.json")
    payload = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": "small" if cfg.small else "full",
        "command": command_line(cfg),
        "duration_s": round(elapsed, 1),
        "config": cfg.as_dict(),
        "machine": facts,
        "gunicorn": {"workers": cfg.workers, "worker_class": "gevent", "env": "RATELIMIT_ENABLED=false"},
        "rows": _ordered(rows),
    }
    report.write_results(out, payload)
    ctx.log(f"results: {out.relative_to(ROOT)}; whole run {elapsed:.0f} s")
    # Only a full run of every row replaces the table (a BENCH_ONLY run would drop the other rows).
    if (not cfg.small and not cfg.only) or os.environ.get("BENCH_UPDATE_DOC") == "1":
        if report.update_benchmarks_md(DOC, _doc_section(payload, table, out)):
            ctx.log("BENCHMARKS.md updated")
    not_met = [r for r in rows if r.status == report.NOT_MET]
    unmeasured = [r for r in rows if r.status == report.NOT_MEASURED]
    ctx.log(f"{len(not_met)} targets not met, {len(unmeasured)} rows not measured")
    return 0


ORDER = ["campus", "route_uncached", "route_lengths", "route_floor", "route_directions", "route_phases", "route_cached_latency", "route_cached_rps",
         "route_after_edit", "route_closures", "page_replan",
         "route_shape_bench", "route_shape_grid", "route_shape_huge", "route_shape_station",
         "route_after_edit_costs", "route_after_edit_topology", "route_index_memory", "route_index_build",
         "sse_rate", "sse_first_event", "peer_sse", "peer_json", "peer_gdal", "peer_tiles", "sse_scaling", "swarm_heartbeats", "swarm_rss",
         "swarm_connections", "closure_event_latency", "closure_event_connections", "room_search"]  # fmt: skip


def _ordered(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: ORDER.index(r.key) if r.key in ORDER else len(ORDER))


def _doc_section(payload: dict, table: str, out: Path) -> str:
    m = payload["machine"]
    cfg = payload["config"]
    return "\n".join(
        [
            f"Run {payload['date']}, `{payload['command']}`, {payload['duration_s']:.0f} s in all; "
            f"results in `{out.relative_to(ROOT)}` (commit {m['git_commit']}{', dirty tree' if m['git_dirty'] else ''}).",
            "",
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, Linux {m['kernel']}, "
            f"Python {m['python']}; {m['postgresql']}, PostGIS {m['postgis']}, pgRouting {m['pgrouting']}; "
            f"{m['redis']}; {m['wrk']}.",
            "",
            f"Service: gunicorn, {cfg['workers']} gevent workers (config/gunicorn.conf.py), its default settings "
            "except `RATELIMIT_ENABLED=false` (one client address sends everything); the SSE-clients rows run "
            "one worker with `SSE_HEARTBEAT_S=1`. PostgreSQL and Redis are the bench's own, on free ports, with "
            "`shared_buffers=256MB` and `pg_stat_statements` loaded.",
            "",
            table,
        ]
    )
