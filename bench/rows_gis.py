"""Rows: GIS clients against ours and the peer (tipg), same run, same database.

- peer_gdal: features/s through GDAL's OAPIF driver (`ogr2ogr` from an `OAPIF:` URL into a
  GeoPackage), the floor plan, the same page size on both sides, rounds alternating.
- peer_tiles: vector tiles/s for the same tile set (tiles at z16-z19 holding random rooms): first
  each tile once with our tile cache empty (cold: every tile rendered), then wrk cycling through
  the set (ours then serves them from the version-keyed cache; tipg has none). Our tile carries
  three layers (rooms, floor plan, network); tipg serves one collection per tile, so one of our
  tiles is compared with its three tiles of the same place (tipg's tiles/s = its requests/s / 3).
"""

from __future__ import annotations

import math
import random
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from bench.client import Http
from bench.context import Context
from bench.load import lua_cycle, run_wrk, wrk_available
from bench.report import Row, fmt
from bench.stats import median, ratio

TIPG_TABLES = ("base_floor", "room_points", "nav_edges_final")
ZOOMS = (16, 17, 18, 19)


def _gdal_copy(source: str, layer: str, page_size: int, target) -> tuple[int, float]:
    """(features copied, seconds) for one `ogr2ogr` of `layer` from an OAPIF source."""
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    out = subprocess.run(
        ["ogr2ogr", "-oo", f"PAGE_SIZE={page_size}", "-f", "GPKG", str(target), source, layer, "-nln", "copy"],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    elapsed = time.perf_counter() - started
    if out.returncode != 0 or "ERROR" in out.stderr:
        raise RuntimeError(f"ogr2ogr {source} {layer}: {out.stderr.strip()[-300:]}")
    with sqlite3.connect(target) as gpkg:
        count = gpkg.execute('SELECT count(*) FROM "copy"').fetchone()[0]
    return count, elapsed


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def tile_set(cur, per_zoom: int, seed: int) -> list[tuple[int, int, int]]:
    """Up to `per_zoom` distinct tiles per zoom in ZOOMS, each holding at least one room."""
    cur.execute("SELECT ST_X(wkb_geometry), ST_Y(wkb_geometry) FROM room_points ORDER BY ogc_fid")
    points = cur.fetchall()
    rnd = random.Random(seed)
    tiles = []
    for z in ZOOMS:
        found = set()
        for _ in range(per_zoom * 20):
            if len(found) >= per_zoom or not points:
                break
            lon, lat = rnd.choice(points)
            found.add((z, *_tile_of(lon, lat, z)))
        tiles += sorted(found)
    return tiles


def _tiles_per_s(base: str, paths: list[str], per_tile: int, ctx: Context) -> tuple[float, dict]:
    """wrk cycling through `paths`: complete tiles per second and wrk's facts."""
    cfg = ctx.cfg
    result = run_wrk(base + paths[0], cfg.duration_s, cfg.concurrency, script=lua_cycle(paths, ctx.stack.workdir))
    if result.non_2xx or result.socket_errors:
        raise RuntimeError(f"{result.non_2xx} non-2xx answers, {result.socket_errors} socket errors")
    return result.rps / per_tile, {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms}


def _check_paths(base: str, paths: list[str]) -> int:
    """Every path answers 200 or 204 (empty); returns the bytes of the whole set."""
    client = Http(base)
    total = 0
    for path in paths:
        resp = client.get(path)
        if resp.status not in (200, 204):
            raise RuntimeError(f"{path}: HTTP {resp.status} {resp.snippet()}")
        total += len(resp.body)
    client.close()
    return total


def _cold_pass(base: str, paths: list[str], per_tile: int, clients: int = 8) -> float:
    """Tiles per second requesting every path once, `clients` at a time."""
    chunks = [paths[i::clients] for i in range(clients)]

    def run(chunk):
        client = Http(base)
        for path in chunk:
            resp = client.get(path)
            if resp.status not in (200, 204):
                raise RuntimeError(f"{path}: HTTP {resp.status} {resp.snippet()}")
        client.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, chunks))
    return len(paths) / per_tile / (time.perf_counter() - started)


def _forget_tiles(redis_url: str) -> None:
    """Empty our tile cache (Flask-Caching's `indoor:` prefix): the next pass renders every tile."""
    with redis.Redis.from_url(redis_url) as client:
        for key in client.scan_iter("indoor:tile:*", count=1000):
            client.delete(key)


def gis_peers(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    gdal_row = Row(
        "peer_gdal",
        f"floor plan through GDAL (ogr2ogr from OAPIF:, PAGE_SIZE={cfg.gdal_page_size}), ours vs tipg",
        target=">= 3 x tipg",
    )
    tiles_row = Row("peer_tiles", "vector tiles/s, same tiles at z16-z19, ours vs tipg", target=">= 2 x tipg")
    conn = ctx.stack.connect()
    with conn.cursor() as cur:
        tiles = tile_set(cur, cfg.tiles_per_zoom, cfg.seed)
        cur.execute("SELECT count(*) FROM base_floor")
        floor_count = cur.fetchone()[0]
    conn.close()
    ours_paths = [f"/api/tiles/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    tipg_paths = [
        f"/collections/public.{table}/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles for table in TIPG_TABLES
    ]
    target = ctx.stack.workdir / "gdal-copy.gpkg"
    ours_source = f"OAPIF:{ctx.base_url}/ogc"
    ours_rates, tipg_rates = [], []
    ours_tiles = tipg_tiles = None
    facts = {}
    try:
        ctx.log("starting tipg (floor plan, rooms, network edges) ...")
        tipg_base = ctx.stack.start_tipg(*TIPG_TABLES)
        tipg_source = f"OAPIF:{tipg_base}"
        for round_ in range(cfg.rounds):
            for name, source, layer, rates in (
                ("ours", ours_source, "base-floor", ours_rates),
                ("tipg", tipg_source, "public.base_floor", tipg_rates),
            ):
                ctx.log(f"ogr2ogr from {name} (round {round_ + 1}) ...")
                count, elapsed = _gdal_copy(source, layer, cfg.gdal_page_size, target)
                if count != floor_count:
                    raise RuntimeError(f"{name}: GDAL copied {count:,} of {floor_count:,} features")
                rates.append(count / elapsed)
        if wrk_available() and tiles:
            ctx.log("tiles, each once (cold) ...")
            _forget_tiles(ctx.stack.redis.url(0))
            facts["ours_cold"] = _cold_pass(ctx.base_url, ours_paths, 1)
            facts["tipg_cold"] = _cold_pass(tipg_base, tipg_paths, len(TIPG_TABLES))
            facts["ours_bytes"] = _check_paths(ctx.base_url, ours_paths)
            facts["tipg_bytes"] = _check_paths(tipg_base, tipg_paths)
            ours_runs, tipg_runs = [], []
            for round_ in range(cfg.rounds):
                ctx.log(f"tiles, ours and tipg (round {round_ + 1}) ...")
                ours_runs.append(_tiles_per_s(ctx.base_url, ours_paths, 1, ctx))
                tipg_runs.append(_tiles_per_s(tipg_base, tipg_paths, len(TIPG_TABLES), ctx))
            ours_tiles = median([r for r, _ in ours_runs])
            tipg_tiles = median([r for r, _ in tipg_runs])
            facts["ours_wrk"] = [f for _, f in ours_runs]
            facts["tipg_wrk"] = [f for _, f in tipg_runs]
    except Exception as exc:  # the peer's failure is a finding, not a crash
        why = f"{type(exc).__name__}: {exc}"[:300]
        for row in (gdal_row, tiles_row):
            if not row.measured:
                row.not_measured(why)
    finally:
        ctx.stack.stop_tipg()

    if ours_rates and tipg_rates and len(ours_rates) == len(tipg_rates):
        ours, tipg = median(ours_rates), median(tipg_rates)
        r = ratio(ours, tipg)
        gdal_row.measured = f"{fmt(ours)} features/s ({floor_count:,} features, median of {len(ours_rates)})"
        gdal_row.reference = f"tipg {fmt(tipg)} features/s, same client and page size"
        gdal_row.ratio = f"{fmt(r, 1)} x tipg"
        gdal_row.judge(None if r is None else r >= 3)
        gdal_row.data.update(ours=ours_rates, tipg=tipg_rates, features=floor_count)
    if ours_tiles is not None and tipg_tiles is not None:
        r = ratio(ours_tiles, tipg_tiles)
        cold = ratio(facts["ours_cold"], facts["tipg_cold"])
        tiles_row.measured = (
            f"{fmt(ours_tiles)} tiles/s ({len(tiles)} tiles, z16-z19, 3 layers each; wrk "
            f"{cfg.concurrency} connections, {cfg.duration_s:g} s x {cfg.rounds}; from the tile cache "
            f"after the first pass). Cold, each tile once, 8 clients: {fmt(facts['ours_cold'])} tiles/s"
        )
        tiles_row.reference = (
            f"tipg {fmt(tipg_tiles)} tiles/s (3 requests per tile, one per collection: "
            f"{fmt(tipg_tiles * len(TIPG_TABLES))} requests/s; no cache). Cold: {fmt(facts['tipg_cold'])} tiles/s"
        )
        tiles_row.ratio = f"{fmt(r, 1)} x tipg (cold: {fmt(cold, 1)} x)"
        tiles_row.judge(None if r is None else r >= 2)
        tiles_row.data.update(tiles=len(tiles), **facts)
    elif not tiles_row.measured:
        tiles_row.not_measured("wrk is not installed" if not wrk_available() else "no tile holds a room")
    return [gdal_row, tiles_row]
