"""Rows: uncached route vs full-graph pgr_dijkstra (and scipy's floor), cached route vs health."""

from __future__ import annotations

import json
import time

import redis

from bench import load, routing
from bench.context import Context, missing
from bench.report import INFO, Row, fmt
from bench.stack import REFERENCE_ROLE
from bench.stats import median, ms, percentile, ratio
from indoor.http import instructions

TOLERANCE_M = 0.01
TARGET_VIA_CATEGORY = 0.03  # issue 13: uncached p50 <= 0.03 x full-graph pgr_dijkstra


def route_index_ready(ctx: Context) -> dict:
    """Wait (once per run) until every worker of the main server has its route index: each builds
    it in the background after its first route and answers by windows/overlay until then, so the
    route rows measure the index only after this. Bounded (wait_for_index raises after 300 s)."""
    if "route_index" not in ctx.shared:
        conn = ctx.stack.connect_reference()
        with conn.cursor() as cur:
            cur.execute("SELECT ogc_fid FROM room_points ORDER BY ogc_fid")
            rooms = [r[0] for r in cur.fetchall()]
        conn.close()
        started = time.monotonic()
        ready = routing.wait_for_index(ctx.base_url, ctx.server_log, rooms, ctx.cfg.workers)
        waited = time.monotonic() - started
        build = ready[0]
        ctx.log(f"route index ready on {len(ready)} workers {waited:.1f} s after the first route (one worker: "
                f"load {build['load_ms'] / 1000:.2f} s, topology {build['topology_ms'] / 1000:.2f} s, "
                f"customise {build['customize_ms'] / 1000:.2f} s)")  # fmt: skip
        ctx.shared["route_index"] = {"wait_s": round(waited, 1), "ready": ready}
    return ctx.shared["route_index"]


def by_index(ctx: Context, since: int) -> tuple[int, int]:
    """Of the route lines logged after the first `since`: (answered by the index, all)."""
    routes = ctx.server_log.lines("route")[since:]
    return sum(1 for r in routes if r.get("index")), len(routes)


def held(ctx: Context, since: int) -> int:
    """Of the route lines logged after the first `since`: those drawn from memory (no round trip)."""
    return sum(1 for r in ctx.server_log.lines("route")[since:] if r.get("held"))


def uncached_route(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    main = Row("route_uncached", "uncached route (cache empty), random room pairs incl. cross-level",
               target="p50 ratio <= 0.1")  # fmt: skip
    lengths = Row("route_lengths", "route lengths vs full-graph reference", target="identical on every pair (1 cm)")
    floor = Row("route_floor", "in-memory shortest path (scipy csgraph.dijkstra), the physical floor", status=INFO)
    conn = ctx.stack.connect_reference()
    cur = conn.cursor()
    pairs = routing.sample_pairs(cur, cfg.pairs, cfg.seed, cfg.accessible_every)
    snaps = routing.snap(cur, [p.source_room for p in pairs] + [p.target_room for p in pairs])
    timed = min(cfg.ref_timed, len(pairs))
    mix = (f"{len(pairs)} pairs: {sum(p.cross_level for p in pairs)} cross-level, "
           f"{sum(p.cross_building for p in pairs)} cross-building, "
           f"{sum(p.profile == 'accessible' for p in pairs)} accessible")  # fmt: skip
    ctx.log(f"route: {mix}; {timed} also timed with a full-graph pgr_dijkstra each")
    index = route_index_ready(ctx)

    client = ctx.http()
    # Whether the endpoint is there, with a route from a room to itself: answered without a
    # path and cached nowhere (a worker's own LRU, which FLUSHALL cannot reach, keeps bodies).
    probe_path = f"/api/route/?from={pairs[0].source_room}&to={pairs[0].source_room}"
    probe = client.get(probe_path)
    why = missing(probe, probe_path)
    # Every pair is asked once, with the cache emptied first: each answer must be a MISS.
    redis.Redis.from_url(ctx.stack.redis.url(0)).flushall()
    api = {}  # index -> (status, distance_m or None, x-cache, seconds)
    # Two room pairs can snap to the same two vertices: the second then finds the first's path
    # in the cache (a HIT, rightly). Those are the only HITs an empty cache may give.
    vertex_pairs, repeats = set(), set()
    ref_times, ref_costs_timed = [], {}
    if why is None:
        routing.reset_statement_stats(cur)
    routes_from = len(ctx.server_log.lines("route"))
    directions_from = len(ctx.server_log.lines("route directions"))
    phases_from = len(ctx.server_log.lines("route phases"))
    bodies = []
    for i, pair in enumerate(pairs):
        if why is None:
            resp = client.get(pair.path())
            distance = None
            if resp.status == 200:
                answer = json.loads(resp.body)["route"]
                distance = float(answer["distance_m"])
                ends = (answer["from"].get("vertex"), answer["to"].get("vertex"), pair.profile)
                if ends in vertex_pairs:
                    repeats.add(i)
                vertex_pairs.add(ends)
                bodies.append(answer["instructions"])
            api[i] = (resp.status, distance, resp.headers.get("x-cache", ""), resp.elapsed, resp.snippet(100))
        if i < timed:  # interleaved with the API, so both see the same machine weather
            cost, elapsed = routing.reference_one(cur, pair, snaps)
            ref_costs_timed[i] = cost
            ref_times.append(elapsed)
    pgr_s, pgr_calls = routing.pgr_statement_time(cur, REFERENCE_ROLE) if why is None else (0.0, 0)
    indexed, computed = by_index(ctx, routes_from)
    drawn_held = held(ctx, routes_from)
    ctx.log(f"route: reference p50 {fmt(ms(median(ref_times)))} ms over {timed}; lengths for all pairs ...")
    ref_all, ref_all_s = routing.reference_all(cur, pairs, snaps)
    for i, cost in ref_costs_timed.items():  # the two pgRouting calls agree with each other
        if (cost is None) != (ref_all[i] is None) or (cost is not None and abs(cost - ref_all[i]) > 1e-6):
            lengths.note = f"pgr_dijkstra and pgr_dijkstraCost disagree on pair {i}"
    ref_p50 = median(ref_times)
    main.reference = f"full-graph pgr_dijkstra p50 {fmt(ms(ref_p50))} ms, p95 {fmt(ms(percentile(ref_times, 95)))} ms ({timed} pairs, one psycopg2 connection)"  # noqa: E501
    main.data.update(pairs=len(pairs), mix=mix, ref_timed=timed, ref_p50_ms=ms(ref_p50),
                     ref_p95_ms=ms(percentile(ref_times, 95)), ref_all_s=round(ref_all_s, 2))  # fmt: skip

    # The floor: the same graph in memory, same pairs as the timed reference.
    ctx.log("route: scipy floor ...")
    graph = routing.InMemoryGraph(cur)
    floor_times, floor_disagree = [], 0
    for i in range(timed):
        pair = pairs[i]
        d, elapsed = graph.shortest(pair.profile, snaps[pair.source_room][0], snaps[pair.target_room][0])
        floor_times.append(elapsed)
        if (d is None) != (ref_all[i] is None) or (d is not None and abs(d - ref_all[i]) > 1e-6):
            floor_disagree += 1
    floor_p50 = median(floor_times)
    floor.measured = (f"p50 {fmt(ms(floor_p50))} ms per pair (single-source, whole graph, no early exit); "
                      f"graph into CSR {fmt(graph.load_s, 2)} s; lengths agree with pgRouting on "
                      f"{timed - floor_disagree}/{timed}")  # fmt: skip
    floor.reference = f"full-graph pgr_dijkstra p50 {fmt(ms(ref_p50))} ms"
    floor.ratio = f"{fmt(ratio(floor_p50, ref_p50), 3)} x reference"
    floor.data.update(p50_ms=ms(floor_p50), csr_build_s=graph.load_s, disagree=floor_disagree)
    cur.close()
    conn.close()

    if why is not None:
        ctx.shared["route_missing"] = why
        main.not_measured(why)
        lengths.not_measured(why)
        lengths.reference = (
            f"full-graph pgr_dijkstraCost + connectors for all {len(pairs)} pairs in {fmt(ref_all_s, 1)} s"  # noqa: E501
        )
        return [main, lengths, floor]

    misses = [i for i, a in api.items() if a[0] in (200, 422) and a[2].upper() == "MISS"]
    errors = [(i, a[0], a[4]) for i, a in api.items() if a[0] not in (200, 422)]
    times = [api[i][3] for i in misses]
    p50, p95 = median(times), percentile(times, 95)
    api_timed_p50 = median([api[i][3] for i in misses if i < timed])
    share = ratio(pgr_s, sum(a[3] for a in api.values()))
    main.measured = (f"p50 {fmt(ms(p50))} ms, p95 {fmt(ms(p95))} ms ({len(misses)}/{len(pairs)} answered as MISS, "
                     f"{indexed}/{computed} computed by the route index, {drawn_held} drawn from memory); "
                     f"pgRouting statements {fmt(None if share is None else share * 100)}% of client time "
                     f"({pgr_calls} calls)")  # fmt: skip
    if errors:
        main.note = f"{len(errors)} errors, first: HTTP {errors[0][1]} {errors[0][2]}"
    r = ratio(api_timed_p50, ref_p50)
    main.ratio = f"{fmt(r, 3)} (p50 on the {timed} timed pairs)"
    unexpected_hits = [i for i, a in api.items() if a[2].upper() != "MISS" and i not in repeats]
    if repeats:
        main.measured += f"; {len(repeats)} pair(s) snapped to the vertices of an earlier pair"
    main.judge(None if r is None else (r <= 0.1 and not errors and not unexpected_hits))
    main.data.update(p50_ms=ms(p50), p95_ms=ms(p95), misses=len(misses), errors=len(errors), ratio=r,
                     repeats=len(repeats), unexpected_hits=len(unexpected_hits),
                     pgr_share=share, pgr_calls=pgr_calls, api_timed_p50_ms=ms(api_timed_p50),
                     by_index=indexed, computed=computed, held=drawn_held, index_wait_s=index["wait_s"])  # fmt: skip

    mismatches = []
    for i, pair in enumerate(pairs):
        status, distance = api[i][0], api[i][1]
        if status not in (200, 422):
            mismatches.append((i, "error", status))
            continue
        expected = routing.end_to_end(pair, snaps, ref_all[i])
        if (expected is None) != (distance is None) or (
            expected is not None and abs(expected - distance) > TOLERANCE_M
        ):
            mismatches.append((i, expected, distance))
    unreachable = sum(1 for v in ref_all.values() if v is None)
    lengths.measured = (
        f"{len(pairs) - len(mismatches)}/{len(pairs)} identical ({mix}; {unreachable} unreachable in both)"
    )
    if mismatches:
        i, expected, got = mismatches[0]
        lengths.note = f"first mismatch: {pairs[i].path()} expected {expected}, got {got}"
    lengths.reference = f"full-graph pgr_dijkstraCost + connectors, all pairs ({fmt(ref_all_s, 1)} s)"
    lengths.judge(not mismatches)
    lengths.data.update(mismatches=len(mismatches), examples=mismatches[:5])
    floor.measured += f"; the API's uncached p50 is {fmt(ratio(p50, floor_p50), 1)} x this"
    ctx.shared["cached_paths"] = [pairs[i].path() for i in misses if api[i][0] == 200][:20]
    return [main, lengths, floor, _directions_row(ctx, routes_from, directions_from, bodies),
            _phases_row(ctx, phases_from)]  # fmt: skip


def _phases_row(ctx: Context, phases_from: int) -> Row:
    """Where the uncached routes' time went inside the service: the medians of each phase of the
    service's `route phases` log lines (indoor/routing/route.py, Phases)."""
    row = Row("route_phases", "uncached route: where the time goes in the service (p50 of each phase)", status=INFO)
    lines = [r for r in ctx.server_log.lines("route phases")[phases_from:] if r.get("cache") == "MISS"]
    if not lines:
        return row.not_measured("no uncached route logged its phases")
    names = list(dict.fromkeys(k for r in lines for k in r if k.endswith("_ms") and k != "total_ms"))
    medians = {k[:-3]: median([r.get(k, 0.0) for r in lines]) for k in names}
    row.measured = ", ".join(f"{name} {fmt(value, 2)}" for name, value in medians.items()) + " ms"
    row.reference = f"the whole: p50 {fmt(median([r['total_ms'] for r in lines]), 2)} ms ({len(lines)} routes)"
    row.data.update(phases_p50_ms=medians, routes=len(lines))
    return row


def _directions_row(ctx: Context, routes_from: int, directions_from: int, bodies: list) -> Row:
    """What directions add to an uncached route: the maneuvers and their names (the service's own
    "route directions" log lines), and the words for one language (rendered here, the same code)."""
    row = Row("route_directions", "directions added to an uncached route (maneuvers, names, words)",
              target="< 1 ms per route")  # fmt: skip
    lines = ctx.server_log.lines("route directions")[directions_from:]
    searched = [r["total_ms"] for r in ctx.server_log.lines("route")[routes_from:] if r.get("cache") == "MISS"]
    loads = ctx.server_log.lines("spaces loaded")
    if not lines or not bodies:
        return row.not_measured("no uncached route logged its directions")
    words = []
    for steps in bodies:
        maneuvers = [{k: v for k, v in s.items() if k not in ("text", "distance_text")} for s in steps]
        started = time.perf_counter()
        instructions.render(maneuvers, "de")
        words.append((time.perf_counter() - started) * 1000)
    directions_p50 = median([r["maneuvers_ms"] for r in lines])
    body_p50 = median([r["body_ms"] for r in lines])
    spaces_p50 = median([r["spaces_ms"] for r in lines])
    words_p50 = median(words)
    added = directions_p50 + spaces_p50 + words_p50
    search_p50 = median(searched) if searched else None
    row.measured = (f"p50 {fmt(added, 3)} ms: maneuvers and names {fmt(directions_p50, 3)} ms, names held "
                    f"{fmt(spaces_p50, 3)} ms, German words {fmt(words_p50, 3)} ms ({len(lines)} routes, "
                    f"median {median([r['steps'] for r in lines]):.0f} steps; the whole body with its legs "
                    f"{fmt(body_p50, 3)} ms)")  # fmt: skip
    if loads:
        row.measured += (f"; names loaded once per worker per floor-plan version: "
                         f"{fmt(median([r['ms'] for r in loads]), 0)} ms for {loads[-1]['spaces']:,} named spaces")  # fmt: skip
    row.reference = f"the same routes up to their path (route log total_ms) p50 {fmt(search_p50, 2)} ms"
    row.ratio = f"+{fmt(ratio(added, search_p50) * 100 if search_p50 else None, 1)}% of that"
    row.judge(added < 1.0)
    row.data.update(added_ms=added, directions_p50_ms=directions_p50, body_p50_ms=body_p50, spaces_p50_ms=spaces_p50,
                    words_p50_ms=words_p50, search_p50_ms=search_p50, routes=len(lines))  # fmt: skip
    return row


def cached_route(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    latency = Row("route_cached_latency", "cached route latency (one client, sequential)", target="p50 < 2 ms")
    throughput = Row("route_cached_rps", f"cached route throughput (wrk, {cfg.concurrency} connections)",
                     target=">= 0.7 x health")  # fmt: skip
    client = ctx.http()
    paths = ctx.shared.get("cached_paths") or []
    why = None
    if not paths:
        why = ctx.shared.get("route_missing") or "no route was answered in the uncached row"
    else:
        for path in paths:  # cached by the uncached row; now each must be a HIT
            resp = client.get(path)
            why = why or missing(resp, path)
    health = "/api/health/"
    route_times, health_times, hits = [], [], 0
    for k in range(cfg.latency_samples):
        health_times.append(client.get(health).elapsed)
        if why is None:
            resp = client.get(paths[k % len(paths)])
            route_times.append(resp.elapsed)
            hits += resp.headers.get("x-cache", "").upper() == "HIT"
    health_p50 = median(health_times)
    latency.reference = f"/api/health/ p50 {fmt(ms(health_p50), 2)} ms (same client, interleaved)"
    latency.data.update(health_p50_ms=ms(health_p50))

    if not load.wrk_available():
        throughput.not_measured("wrk is not installed (apt-get install wrk; scripts/system-deps.sh --bench)")
        health_rounds, route_rounds = [], []
    else:
        script = load.lua_cycle(paths, ctx.stack.workdir) if paths else None
        r = redis.Redis.from_url(ctx.stack.redis.url(0))
        health_rounds, route_rounds, non2xx, redis_hits, wrk_requests = [], [], 0, 0, 0
        for n in range(cfg.rounds):
            ctx.log(f"wrk round {n + 1}/{cfg.rounds}: health{'' if why else ' and cached route'}")
            h = load.run_wrk(ctx.base_url + health, cfg.duration_s, cfg.concurrency)
            health_rounds.append(h)
            if why is None:
                before = int(r.info("stats")["keyspace_hits"])
                w = load.run_wrk(ctx.base_url + "/", cfg.duration_s, cfg.concurrency, script=script)
                redis_hits += int(r.info("stats")["keyspace_hits"]) - before
                route_rounds.append(w)
                non2xx += w.non_2xx + w.socket_errors
                wrk_requests += w.requests
        health_rps = median([h.rps for h in health_rounds])
        throughput.reference = f"/api/health/ {fmt(health_rps)} req/s (median of {cfg.rounds})"
        throughput.data.update(
            health_rps=[h.rps for h in health_rounds], health_p50_ms=[h.p50_ms for h in health_rounds]
        )
        if why is None:
            rps = median([w.rps for w in route_rounds])
            rr = ratio(rps, health_rps)
            throughput.measured = (f"{fmt(rps)} req/s (median of {cfg.rounds}; {len(paths)} cached routes in turn; "
                                   f"p50 under load {fmt(median([w.p50_ms for w in route_rounds]), 2)} ms; "
                                   f"Redis hits {redis_hits:,} for {wrk_requests:,} requests)")  # fmt: skip
            throughput.ratio = f"{fmt(rr, 2)} x health"
            if non2xx:
                throughput.note = f"{non2xx} non-2xx answers or socket errors"
            throughput.judge(rr is not None and rr >= 0.7 and not non2xx)
            throughput.data.update(rps=[w.rps for w in route_rounds], ratio=rr, non_2xx=non2xx, redis_hits=redis_hits)
    ctx.shared["health_rps"] = median([h.rps for h in health_rounds]) if health_rounds else None
    ctx.shared["health_p50_ms"] = ms(health_p50)
    if why is not None:
        latency.not_measured(why)
        if throughput.status != "not measured":
            throughput.not_measured(why)
        return [latency, throughput]
    p50 = median(route_times)
    latency.measured = (
        f"p50 {fmt(ms(p50), 2)} ms, p95 {fmt(ms(percentile(route_times, 95)), 2)} ms ({hits}/{len(route_times)} HIT)"
    )
    latency.ratio = f"{fmt(ratio(p50, health_p50), 2)} x health"
    latency.judge(p50 is not None and ms(p50) < 2.0 and hits == len(route_times))
    latency.data.update(p50_ms=ms(p50), health_p50_ms=ms(health_p50), hits=hits, samples=len(route_times))
    return [latency, throughput]


# The overlay is the graph's (graph_key matches), and when the last build ended.
OVERLAY_STATE = """
SELECT o.graph_key = v.version || '-' || (extract(epoch FROM v.changed_at) * 1000000)::bigint,
       extract(epoch FROM o.built_at) + o.build_ms / 1000.0, o.build_ms / 1000.0
  FROM indoor_route_overlay o, indoor_versions v
 WHERE v.name = 'graph'
"""


def route_after_edit(ctx: Context) -> list[Row]:
    """An edit by another client makes the overlay stale: what routes cost until the service has
    rebuilt it, and how long that takes. Only a route the index cannot answer asks for the
    rebuild: when the index answers every route after the edit, the row says so and stops."""
    cfg = ctx.cfg
    n = 10 if cfg.small else 20
    row = Row("route_after_edit", "uncached routes after an edit by another client (overlay stale until rebuilt)",
              status=INFO)  # fmt: skip
    conn = ctx.stack.connect_reference()
    cur = conn.cursor()
    cur.execute(OVERLAY_STATE)
    state = cur.fetchone()
    if state is None or not state[0]:
        row.not_measured("no current route overlay before the edit")
        return [row]
    pairs = routing.sample_pairs(cur, 2 * n, cfg.seed + 1, 0)
    route_index_ready(ctx)
    client = ctx.http()
    routes_from = len(ctx.server_log.lines("route"))
    # Changes no length, moves the graph version: what any UPDATE by QGIS or psql does to the overlay.
    cur.execute("UPDATE nav_edges_final SET cost = cost WHERE id = (SELECT min(id) FROM nav_edges_final)")
    cur.execute("SELECT extract(epoch FROM clock_timestamp())")
    edited_at = float(cur.fetchone()[0])
    stale, fresh, misses, errors = [], [], 0, 0
    deadline = time.perf_counter() + 120
    pending = iter(pairs)
    while time.perf_counter() < deadline:
        cur.execute(OVERLAY_STATE)
        current, finished_at, build_s = cur.fetchone()
        if current:
            break
        pair = next(pending) if len(stale) < n else None
        if pair is None:
            if by_index(ctx, routes_from)[0] == len(stale):
                break  # the index followed the edit: no route asked for a rebuild
            time.sleep(0.1)  # enough samples: wait for the rebuild
            continue
        resp = client.get(pair.path())
        errors += resp.status not in (200, 422)
        misses += resp.headers.get("x-cache", "").upper() == "MISS"
        stale.append(resp.elapsed)
    if not current:
        indexed, computed = by_index(ctx, routes_from)
        row.measured = (f"{len(stale)} uncached routes right after the edit: p50 {fmt(ms(median(stale)))} ms, "
                        f"{indexed}/{computed} computed by the route index; the overlay stayed stale (not rebuilt: "
                        f"{'no route fell back to it' if indexed == len(stale) else 'not within 120 s'})")  # fmt: skip
        row.data.update(stale_p50_ms=ms(median(stale)), stale_samples=len(stale), misses=misses, errors=errors,
                        by_index=indexed, computed=computed, overlay_rebuilt=False)  # fmt: skip
        if errors:
            row.note = f"{errors} errors"
        return [row]
    for pair in list(pending)[:n]:
        resp = client.get(pair.path())
        errors += resp.status not in (200, 422)
        misses += resp.headers.get("x-cache", "").upper() == "MISS"
        fresh.append(resp.elapsed)
    cur.close()
    conn.close()
    indexed, computed = by_index(ctx, routes_from)
    stale_for = float(finished_at) - edited_at
    row.measured = (f"overlay current again {fmt(stale_for, 1)} s after the edit committed (settle "
                    f"{fmt(cfg_settle_s(), 1)} s + build {fmt(float(build_s), 1)} s); meanwhile {len(stale)} uncached "
                    f"routes: p50 {fmt(ms(median(stale)))} ms; then {len(fresh)} with the overlay current: "
                    f"p50 {fmt(ms(median(fresh)))} ms; {misses}/{len(stale) + len(fresh)} MISS; {indexed}/{computed} "
                    "computed by the route index")  # fmt: skip
    if errors:
        row.note = f"{errors} errors"
    row.reference = "the index follows an edit in place; without it (ROUTE_INDEX=false) stale routes use windows"
    row.data.update(stale_s=stale_for, build_s=float(build_s), stale_p50_ms=ms(median(stale)),
                    fresh_p50_ms=ms(median(fresh)), stale_samples=len(stale), fresh_samples=len(fresh),
                    misses=misses, errors=errors, by_index=indexed, computed=computed)  # fmt: skip
    return [row]


def cfg_settle_s() -> float:
    """The service's ROUTE_OVERLAY_SETTLE_S (the bench runs it with its defaults)."""
    from config.settings import Settings

    return Settings.from_env().route_overlay_settle_s


# One-to-many from the start vertex to the vertices of every room of a category, whole graph:
# the reference a category route must equal and beat.
CATEGORY_ROOMS = "SELECT ogc_fid FROM room_points WHERE lower(category) = lower(%s) ORDER BY ogc_fid"
REFERENCE_MANY = "/* bench-reference */ SELECT end_vid, agg_cost FROM pgr_dijkstraCost(%s, %s::bigint, %s::bigint[])"


def via_and_category_routes(ctx: Context) -> list[Row]:
    """Uncached routes through two vias, and to the nearest room of a category, against the
    full-graph pgRouting calls that answer the same question (one pgr_dijkstra per part; one
    pgr_dijkstraCost from the start to every room of the category)."""
    cfg = ctx.cfg
    n = 10 if cfg.small else 30
    target = f"p50 ratio <= {TARGET_VIA_CATEGORY}"
    via = Row("route_via", "uncached route through 2 vias (3 parts), random rooms", target=target)
    category = Row("route_category", "uncached route to the nearest room of a category (category:toilets)",
                   target=target)  # fmt: skip
    index = route_index_ready(ctx)
    conn = ctx.stack.connect_reference()
    cur = conn.cursor()
    client = ctx.http()
    redis.Redis.from_url(ctx.stack.redis.url(0)).flushall()
    # Through vias: each leg is a pair of the usual sample, chained.
    legs = routing.sample_pairs(cur, 3 * n, cfg.seed + 2, 0)
    trips = [(legs[3 * k].source_room, legs[3 * k + 1].source_room, legs[3 * k + 2].source_room, legs[3 * k].target_room)
             for k in range(n)]  # fmt: skip
    snaps = routing.snap(cur, [room for trip in trips for room in trip])
    api_times, ref_times, mismatches, errors = [], [], [], 0
    routes_from = len(ctx.server_log.lines("route"))
    for trip in trips:
        path = f"/api/route/?from={trip[0]}&via={trip[1]}&via={trip[2]}&to={trip[3]}"
        resp = client.get(path)
        expected, ref_s = 0.0, 0.0
        for a, b in zip(trip, trip[1:], strict=False):
            if a == b:
                continue  # a part of length 0
            pair = routing.Pair(a, b, "walking", 0, 0, None, None)
            cost, elapsed = routing.reference_one(cur, pair, snaps)
            ref_s += elapsed
            expected = None if expected is None or cost is None else expected + routing.end_to_end(pair, snaps, cost)
        ref_times.append(ref_s)
        if resp.status not in (200, 422):
            errors += 1
            continue
        api_times.append(resp.elapsed)
        got = json.loads(resp.body)["route"]["distance_m"] if resp.status == 200 else None
        if (got is None) != (expected is None) or (got is not None and abs(got - expected) > 3 * TOLERANCE_M):
            mismatches.append((path, expected, got))
    indexed, computed = by_index(ctx, routes_from)
    _judge(via, api_times, ref_times, mismatches, errors, n, "3 full-graph pgr_dijkstra (one per part)")
    via.measured += f"; {indexed}/{computed} parts computed by the route index"
    via.data.update(by_index=indexed, computed=computed, index_wait_s=index["wait_s"])

    # The nearest toilets from random rooms.
    cur.execute(CATEGORY_ROOMS, ("toilets",))
    toilets = [row[0] for row in cur.fetchall()]
    starts = [p.source_room for p in routing.sample_pairs(cur, n, cfg.seed + 3, 0)]
    snaps = routing.snap(cur, starts + toilets)
    api_times, ref_times, mismatches, errors = [], [], [], 0
    routes_from = len(ctx.server_log.lines("route"))
    choices_from = len(ctx.server_log.lines("route category"))
    for start in starts:
        path = f"/api/route/?from={start}&to=category:toilets"
        resp = client.get(path)
        vertex, connector = snaps[start]
        targets = sorted({snaps[t][0] for t in toilets if t in snaps})
        started = time.perf_counter()
        cur.execute(REFERENCE_MANY, (routing.EDGES_SQL["walking"], vertex, targets))
        costs = {int(v): float(c) for v, c in cur.fetchall()}
        ref_times.append(time.perf_counter() - started)
        costs[vertex] = 0.0
        totals = [connector + costs[snaps[t][0]] + snaps[t][1] for t in toilets if t in snaps and snaps[t][0] in costs]
        expected = min(totals) if totals else None
        if resp.status not in (200, 422):
            errors += 1
            continue
        api_times.append(resp.elapsed)
        got = json.loads(resp.body)["route"]["distance_m"] if resp.status == 200 else None
        if (got is None) != (expected is None) or (got is not None and abs(got - expected) > TOLERANCE_M):
            mismatches.append((path, expected, got))
    _judge(category, api_times, ref_times, mismatches, errors, n,
           f"full-graph pgr_dijkstraCost to all {len(toilets)} toilets")  # fmt: skip
    indexed, computed = by_index(ctx, routes_from)
    choices = ctx.server_log.lines("route category")[choices_from:]
    chosen = sum(1 for c in choices if c.get("decided_by") == "index")
    category.measured += (f"; {chosen}/{len(choices)} rooms chosen by the route index, {indexed}/{computed} paths "
                          "computed by it")  # fmt: skip
    category.data.update(chosen_by_index=chosen, choices=len(choices), by_index=indexed, computed=computed,
                         index_wait_s=index["wait_s"])  # fmt: skip
    cur.close()
    conn.close()
    return [via, category]


def _judge(row: Row, api_times, ref_times, mismatches, errors: int, n: int, reference: str) -> None:
    p50, ref_p50 = median(api_times), median(ref_times)
    r = ratio(p50, ref_p50)
    row.measured = (f"p50 {fmt(ms(p50))} ms, p95 {fmt(ms(percentile(api_times, 95)))} ms over {len(api_times)}/{n}; "
                    f"lengths identical on {len(api_times) - len(mismatches)}/{len(api_times)}")  # fmt: skip
    row.reference = f"{reference}: p50 {fmt(ms(ref_p50))} ms"
    row.ratio = f"{fmt(r, 3)} x reference"
    if mismatches or errors:
        row.note = f"{errors} errors; first mismatch: {mismatches[0] if mismatches else None}"
    row.judge(None if r is None else (r <= TARGET_VIA_CATEGORY and not mismatches and not errors))
    row.data.update(p50_ms=ms(p50), ref_p50_ms=ms(ref_p50), ratio=r, mismatches=len(mismatches), errors=errors)
