"""What the route index costs a machine: memory per worker (RSS and PSS) with the index loaded,
for one worker and for `cfg.workers`, and the CPU a graph version costs all workers together.

PSS (proportional set size, /proc/<pid>/smaps_rollup) divides each shared page among the
processes that map it: the store's read-only maps (index_store.py) count once per machine, as
they cost. RSS counts them in every worker.

Also runnable alone, to compare two checkouts on one campus (the before/after of BENCHMARKS.md):
`python -m bench.rows_index_memory /work/main .` (BENCH_* options as for `make bench`).
"""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.client import Http
from bench.report import Row, fmt
from bench.routing import wait_for_index
from bench.stack import ServerLog
from scripts.services import GunicornServer

TICKS = os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict:
    """Rss, Pss, Pss_Anon and Pss_File of a process, KiB (those the kernel reports)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss", "Pss_Anon", "Pss_File"):
                out[name] = int(rest.split()[0])
    except OSError:
        pass
    return out


def cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def measure(stack, root: Path, workers: int, rooms: list[int], env: dict | None = None) -> dict:
    """Start `root`'s service with `workers` workers, route until each logged its index ready,
    and read every worker's memory and CPU before the first route and after."""
    store = tempfile.mkdtemp(prefix="indoor-route-index-bench-")
    environment = {
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis.url(0),
        "RATELIMIT_ENABLED": "false",
        "ROUTE_INDEX_DIR": store,  # a fresh store: every version is built once in this measure
        **(env or {}),
    }
    server_log = ServerLog(stack.log_path)
    server = GunicornServer(environment, workers=workers, root=root).start(stack.log_path)
    stack.servers.append(server)
    try:
        _wait_ready(server.base_url, workers)
        time.sleep(1.0)
        pids = sorted(server.worker_pids())
        before = {pid: memory_kib(pid) for pid in pids}
        cpu_before = {pid: cpu_s(pid) for pid in pids}
        started = time.perf_counter()
        ready = wait_for_index(server.base_url, server_log, rooms, workers)
        ready_s = time.perf_counter() - started
        time.sleep(2.0)  # the store's write and the heap trim after the last ready line
        after = {pid: memory_kib(pid) for pid in pids}
        cpu = sum(cpu_s(pid) - cpu_before[pid] for pid in pids)
    finally:
        stack.stop_app(server)
        shutil.rmtree(store, ignore_errors=True)

    def total(snapshot, name):
        return sum(m.get(name, 0) for m in snapshot.values()) / 1024

    return {
        "workers": workers,
        "root": str(root),
        "rss_mb_before": round(total(before, "Rss"), 1),
        "pss_mb_before": round(total(before, "Pss"), 1),
        "rss_mb": round(total(after, "Rss"), 1),
        "pss_mb": round(total(after, "Pss"), 1),
        "pss_file_mb": round(total(after, "Pss_File"), 1),
        "per_worker_rss_mb": [round(after[p].get("Rss", 0) / 1024, 1) for p in pids],
        "per_worker_pss_mb": [round(after[p].get("Pss", 0) / 1024, 1) for p in pids],
        "cpu_s": round(cpu, 2),
        "ready_s": round(ready_s, 1),
        "ready": [
            {
                k: line.get(k)
                for k in (
                    "how",
                    "edges",
                    "load_ms",
                    "topology_ms",
                    "customize_ms",
                    "total_ms",
                    "topology_mb",
                    "metrics_mb",
                    "mapped_mb",
                )
            }
            for line in ready
        ],
    }


def _wait_ready(base_url: str, workers: int, timeout_s: float = 120.0) -> None:
    """Every worker answered (a fresh connection per try: a timed-out one cannot be reused)."""
    deadline, answered = time.monotonic() + timeout_s, 0
    while answered < workers * 20:
        try:
            answered += Http(base_url, timeout=10).get("/api/health/ready").status == 200
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"service not ready after {timeout_s:.0f} s")
        time.sleep(0.02)


def _rooms(stack, n: int = 300) -> list[int]:
    conn = stack.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT ogc_fid FROM room_points ORDER BY ogc_fid")
        ids = [r[0] for r in cur.fetchall()]
    conn.close()
    return random.Random(7).sample(ids, min(n, len(ids)))


def index_memory_rows(ctx) -> list[Row]:
    """Two rows: memory of 1 and of cfg.workers workers with the index loaded (target: the
    workers hold at most 2x one worker's PSS); the CPU one graph version costs the machine."""
    root = Path(__file__).resolve().parent.parent
    rooms = _rooms(ctx.stack)
    one = measure(ctx.stack, root, 1, rooms)
    ctx.log(f"index memory, 1 worker: {one}")
    many = measure(ctx.stack, root, ctx.cfg.workers, rooms)
    ctx.log(f"index memory, {ctx.cfg.workers} workers: {many}")
    n = ctx.cfg.workers
    edges = one["ready"][0]["edges"] if one["ready"] else None
    memory = Row("route_index_memory", f"route index loaded ({fmt(edges)} edges): memory of {n} workers vs 1")
    memory.measured = (
        f"{n} workers: PSS {fmt(many['pss_mb'])} MB in all (RSS {fmt(many['rss_mb'])} MB; before the index "
        f"PSS {fmt(many['pss_mb_before'])} MB); per worker RSS {many['per_worker_rss_mb']} MB"
    )
    memory.reference = (
        f"1 worker: PSS {fmt(one['pss_mb'])} MB (RSS {fmt(one['rss_mb'])} MB; before the index "
        f"PSS {fmt(one['pss_mb_before'])} MB)"
    )
    memory.ratio = f"{many['pss_mb'] / one['pss_mb']:.2f}x" if one["pss_mb"] else ""
    memory.target = "<= 2x"
    memory.judge(many["pss_mb"] <= 2 * one["pss_mb"] if one["pss_mb"] else None)
    memory.data.update(one=one, many=many)
    build = Row("route_index_build", f"route index: CPU per graph version per machine ({n} workers)")
    hows = sorted({r["how"] for r in many["ready"]})
    counts = ", ".join(f"{sum(1 for r in many['ready'] if r['how'] == h)} {h}" for h in hows)
    build.measured = (
        f"{n} workers: {fmt(many['cpu_s'], 2)} s CPU in all, every worker ready {fmt(many['ready_s'])} s after the "
        f"first route ({counts})"
    )
    build.reference = f"1 worker: {fmt(one['cpu_s'], 2)} s CPU, ready {fmt(one['ready_s'])} s after the first route"
    build.ratio = f"{many['cpu_s'] / one['cpu_s']:.2f}x" if one["cpu_s"] else ""
    build.target = "one build per machine"
    build.judge(sum(1 for r in many["ready"] if r["how"] == "built") == 1)
    build.data.update(one=one, many=many)
    return [memory, build]


def main(roots: list[str]) -> int:
    """Each checkout in `roots`, 1 and BENCH_WORKERS workers, on one bench campus."""
    from bench import config
    from bench.stack import Stack

    cfg = config.from_env()
    stack = Stack(log=lambda m: print(m, file=sys.stderr, flush=True))
    try:
        stack.start_services()
        campus = stack.generate_campus(cfg)
        print(f"campus: {campus['edges']} edges, {campus['vertices']} vertices", flush=True)
        rooms = _rooms(stack)
        for root in roots:
            for workers in (1, cfg.workers):
                print(measure(stack, Path(root).resolve(), workers, rooms), flush=True)
    finally:
        stack.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["."]))
