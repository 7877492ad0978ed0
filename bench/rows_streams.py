"""Rows: the floor plan as SSE vs COPY, scaling, JSON paging, the peer (tipg), 1,000 SSE clients."""

from __future__ import annotations

import json
import time

from bench import swarm
from bench.client import Http, check_sse, follow_pages, stream_sse
from bench.context import Context, missing
from bench.machine import children
from bench.report import NOT_MEASURED, Row, fmt
from bench.stats import median, ms, ratio

# The features the endpoint sends, as one JSON text per row (API.md's base-floor Feature).
FEATURE_SELECT = """
SELECT json_build_object('type', 'Feature', 'id', ogc_fid,
                         'geometry', ST_AsGeoJSON(wkb_geometry)::json,
                         'properties', json_build_object('layer', layer, 'name', name,
                                                         'level', level, 'building', building))
  FROM base_floor {where} ORDER BY ogc_fid
"""

FLOOR = "/api/base-floor/"
HEARTBEAT_S = 1.0  # SSE_HEARTBEAT_S for the many-clients rows


class _CopySink:
    """A file-like object for copy_expert that only counts (and notes when the first row came)."""

    def __init__(self, started: float):
        self.started = started
        self.first = None
        self.rows = 0
        self.nbytes = 0

    def write(self, data):
        if self.first is None:
            self.first = time.perf_counter() - self.started
        self.rows += data.count(b"\n" if isinstance(data, bytes) else "\n")
        self.nbytes += len(data)


def copy_rate(conn, where: str = "", params=None) -> dict:
    with conn.cursor() as cur:
        statement = "COPY (" + FEATURE_SELECT.format(where=where) + ") TO STDOUT"
        if params:
            statement = cur.mogrify(statement, params).decode()
        started = time.perf_counter()
        sink = _CopySink(started)
        cur.copy_expert(statement, sink)
        elapsed = time.perf_counter() - started
    return {"rows": sink.rows, "elapsed": elapsed, "rate": sink.rows / elapsed, "first_s": sink.first,
            "mb": sink.nbytes / 1e6}  # fmt: skip


def first_batch_s(conn, batch: int = 500, repeat: int = 5) -> float:
    """The least the first event needs: its batch of features from the database, as one statement."""
    statement = FEATURE_SELECT.format(where="WHERE ogc_fid > %s") + " LIMIT %s"
    times = []
    with conn.cursor() as cur:
        for _ in range(repeat):
            started = time.perf_counter()
            cur.execute(statement, (0, batch))
            cur.fetchall()
            times.append(time.perf_counter() - started)
    return median(times)


def floor_sse(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    rate = Row("sse_rate", "floor-plan SSE, all features (one stream)", target=">= 1.0 x COPY")  # issue 23 (goal 1.2x)
    first = Row("sse_first_event", "floor-plan SSE time to first event", target="< 100 ms")
    scaling = Row(
        "sse_scaling", "scaling: stream time, one building vs all", target="time ratio <= 11 per 10x features"
    )
    probe_path = FLOOR + "?limit=1"
    why = missing(ctx.http().get(probe_path), probe_path)
    small_path = FLOOR + "?building=A"  # one building: its ids are contiguous, a tenth-ish of the campus
    conn = ctx.stack.connect()
    small_rows = copy_rate(conn, "WHERE building = %s", ("A",))["rows"]
    copies, streams, smalls, checked = [], [], [], None
    for n in range(cfg.rounds):  # COPY, all, one building: alternating, so all see the same weather
        copies.append(copy_rate(conn))
        if why is None:
            s = stream_sse(ctx.host, ctx.port, FLOOR)
            if s.status != 200 or s.error:
                why = f"stream answered {s.status} {s.error or ''} {s.body[:120]!r}"
                break
            if checked is None:  # parse and check the first stream in full, after the clock stopped
                checked = check_sse(s.body)
                count = checked.features
            else:
                count = check_sse_count(s.body)
            streams.append({"features": count, "elapsed": s.elapsed, "rate": count / s.elapsed, "ttfe": s.ttfe,
                            "mb": s.nbytes / 1e6})  # fmt: skip
            sm = stream_sse(ctx.host, ctx.port, small_path)
            smalls.append((check_sse_count(sm.body) if sm.status == 200 else 0, sm.elapsed))
        ctx.log(f"floor SSE round {n + 1}/{cfg.rounds}: COPY {copies[-1]['rate']:,.0f}/s"
                + (f", SSE {streams[-1]['rate']:,.0f}/s" if len(streams) == n + 1 else ""))  # fmt: skip
    copy_med = median([c["rate"] for c in copies])
    batch_s = first_batch_s(conn)
    rate.reference = f"COPY (same SELECT) TO STDOUT {fmt(copy_med)} features/s ({copies[0]['rows']:,} rows, {copies[0]['mb']:.0f} MB)"  # noqa: E501
    first.reference = f"the first batch (500 features) as one SQL statement: {fmt(ms(batch_s), 1)} ms"
    rate.data.update(copy_rates=[c["rate"] for c in copies])
    first.data.update(first_batch_sql_ms=ms(batch_s))
    ctx.shared["copy_rate"] = copy_med
    conn.close()
    if why is not None:
        ctx.shared["sse_missing"] = why
        for row in (rate, first, scaling):
            row.not_measured(why)
        return [rate, first, scaling]

    med = median([s["rate"] for s in streams])
    ttfe = median([s["ttfe"] for s in streams if s["ttfe"] is not None])
    problems = checked.problems + (["feature ids not increasing"] if not checked.ids_increasing else [])
    if checked.duplicates:
        problems.append(f"{checked.duplicates} duplicate features")
    if checked.features != copies[0]["rows"]:
        problems.append(f"{checked.features:,} features streamed, table has {copies[0]['rows']:,}")
    r = ratio(med, copy_med)
    rate.measured = (f"{fmt(med)} features/s (median of {len(streams)}; {streams[0]['features']:,} features, "
                     f"{streams[0]['mb']:.0f} MB, {checked.feature_events} events)")  # fmt: skip
    rate.ratio = f"{fmt(r, 2)} x COPY"
    rate.note = "; ".join(problems)
    rate.judge(r is not None and r >= 1.0 and not problems)
    rate.data.update(rates=[s["rate"] for s in streams], ratio=r, problems=problems)
    first.measured = f"{fmt(ms(ttfe))} ms (median of {len(streams)})"
    first.ratio = f"{fmt(ratio(ttfe, batch_s), 1)} x the first batch's SQL"
    first.judge(ttfe is not None and ms(ttfe) < 100)
    first.data.update(ttfe_ms=[ms(s["ttfe"]) if s["ttfe"] else None for s in streams])
    ctx.shared["sse_rate"] = med

    bigs = [(st["features"], st["elapsed"]) for st in streams]
    t_small, t_big = median([e for _, e in smalls]), median([e for _, e in bigs])
    n_small, n_big = smalls[0][0], bigs[0][0]
    raw = ratio(t_big, t_small)
    normalised = None if raw is None or not n_small else raw * 10.0 / (n_big / n_small)
    scaling.measured = (f"{n_small:,} features in {fmt(ms(t_small))} ms, {n_big:,} in {fmt(ms(t_big))} ms: "
                        f"x{fmt(raw, 1)} time for x{fmt(n_big / max(1, n_small), 1)} features")  # fmt: skip
    scaling.reference = f"linear: x{fmt(n_big / max(1, n_small), 1)}"
    scaling.ratio = f"{fmt(normalised, 1)} per 10x features"
    if n_small != small_rows:
        scaling.note = f"building A has {small_rows:,} features, the stream sent {n_small:,}"
    scaling.judge(normalised is not None and normalised <= 11 and n_small == small_rows)
    scaling.data.update(small=smalls, big=bigs, normalised=normalised)
    return [rate, first, scaling]


def check_sse_count(body: bytes) -> int:
    """Features in a stream that was already checked in full once: the `end` event's count."""
    at = body.rfind(b"event: end")
    if at < 0:
        return 0
    data = body[at:].split(b"data:", 1)[1].split(b"\n", 1)[0]
    return int(json.loads(data)["count"])


def json_paging_and_peer(ctx: Context) -> list[Row]:
    cfg = ctx.cfg
    sse_row = Row("peer_sse", "ours (SSE) vs tipg, same features, same database", target=">= 15 x tipg")
    json_row = Row("peer_json", "ours (JSON pages, limit=1000, next links) vs tipg", target=">= 10 x tipg")
    path = FLOOR + "?limit=1000"
    why = missing(ctx.http().get(path), path)
    ours = None
    if why is None:
        ctx.log("JSON paging (ours) ...")
        ours = follow_pages(ctx.http(), path)
        if ours.error:
            why = ours.error
    tipg = {}
    tipg_why = None
    try:
        ctx.log("starting tipg ...")
        base = ctx.stack.start_tipg("base_floor")
        # The largest page size follows every next link. A smaller one first follows them for
        # BENCH_TIPG_PROBE features only: OFFSET paging only gets slower further on, so that rate
        # bounds its whole-set rate from above; it runs to the end too if it beats the largest.
        limits = sorted(cfg.tipg_limits, reverse=True)
        for limit in limits:
            ctx.log(f"tipg limit={limit} ...")
            items = f"/collections/public.base_floor/items?limit={limit}"
            capped = limit != limits[0] and cfg.tipg_probe > 0
            pages = follow_pages(Http(base), items, max_features=cfg.tipg_probe if capped else None)
            if capped and tipg and not pages.error and _rate(pages) > max(_rate(v) for v in tipg.values()):
                pages = follow_pages(Http(base), items)
                capped = False
            pages.capped = capped
            tipg[limit] = pages
    except Exception as exc:  # the peer's failure is a finding, not a crash
        tipg_why = f"tipg could not run: {exc}"[:300]
    finally:
        ctx.stack.stop_tipg()
    good = {k: v for k, v in tipg.items() if not v.error and v.features}
    if good:
        whole = {k: v for k, v in good.items() if not v.capped} or good
        best_limit, best = max(whole.items(), key=lambda kv: _rate(kv[1]))
        best_rate = _rate(best)
        described = ", ".join(
            f"limit={k}: {'<= ' if v.capped else ''}{fmt(_rate(v))}/s"
            + (f" over its first {v.features:,} features" if v.capped else "")
            for k, v in sorted(good.items())
        )
        reference = (f"tipg {fmt(best_rate)} features/s at limit={best_limit} ({best.features:,} features, "
                     f"{best.pages} pages; {described})")  # fmt: skip
        sse_row.reference = json_row.reference = reference
        sse_row.data["tipg"] = json_row.data["tipg"] = {k: _rate(v) for k, v in good.items()}
    else:
        tipg_why = tipg_why or "; ".join(f"limit={k}: {v.error}" for k, v in tipg.items()) or "no tipg result"
        best_rate = None
        sse_row.reference = json_row.reference = tipg_why
    sse = ctx.shared.get("sse_rate")
    if sse is None:
        sse_row.not_measured(ctx.shared.get("sse_missing") or why or "no SSE measurement")
    else:
        r = ratio(sse, best_rate)
        sse_row.measured = f"{fmt(sse)} features/s (the SSE row's median)"
        sse_row.ratio = f"{fmt(r, 1)} x tipg"
        sse_row.judge(None if r is None else r >= 15)
    if why is not None:
        json_row.not_measured(why)
    else:
        rate = _rate(ours)
        r = ratio(rate, best_rate)
        json_row.measured = (f"{fmt(rate)} features/s ({ours.features:,} features, {ours.pages} pages; the "
                             "client's JSON parsing is left out of the time, on both sides)")  # fmt: skip
        json_row.ratio = f"{fmt(r, 1)} x tipg"
        if not ours.ids_increasing:
            json_row.note = "feature ids not increasing across pages"
        json_row.judge(None if r is None else (r >= 10 and ours.ids_increasing))
        json_row.data.update(rate=rate, pages=ours.pages, features=ours.features)
    if best_rate is None:
        for row in (sse_row, json_row):
            if row.status != NOT_MEASURED:
                row.status = NOT_MEASURED
                row.note = tipg_why
    return [sse_row, json_row]


def _rate(pages) -> float:
    """Features per second of server and transfer time: the client's json.loads is not the server's."""
    return pages.features / max(1e-9, pages.elapsed - pages.parse_s)


COUNT_CONNECTIONS = """
SELECT count(*), count(*) FILTER (WHERE state <> 'idle')
  FROM pg_stat_activity WHERE application_name = 'indoor'
"""


def many_clients(ctx: Context, pool_size: int = 5) -> list[Row]:
    """1,000 concurrent SSE clients on one worker: heartbeats, memory, database connections."""
    cfg = ctx.cfg
    n = cfg.sse_clients
    beats = Row("swarm_heartbeats", f"{n:,} concurrent SSE clients on one worker: heartbeats",
                target="all receive heartbeats")  # fmt: skip
    memory = Row("swarm_rss", f"{n:,} concurrent SSE clients: worker RSS growth", target="< 200 MB")
    conns = Row("swarm_connections", f"{n:,} concurrent SSE clients: database connections", target="<= pool size")
    server = ctx.stack.start_app(1, SSE_HEARTBEAT_S=HEARTBEAT_S, DB_POOL_SIZE=pool_size)
    try:
        base = server.base_url
        probe_path = FLOOR + "?limit=1"
        why = missing(Http(base).get(probe_path), probe_path)
        if why is not None:
            for row in (beats, memory, conns):
                row.not_measured(why)
            return [beats, memory, conns]
        workers = children(server.proc.pid)
        if len(workers) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {workers}")
        worker = workers[0]
        host, port = "127.0.0.1", server.port
        # Warm the worker (its pool, its code paths) with one full stream before the baseline.
        stream_sse(host, port, FLOOR + "?building=A")
        time.sleep(1.0)
        monitor = ctx.stack.connect()
        with swarm.Sampler(worker, monitor, COUNT_CONNECTIONS) as before:
            time.sleep(1.0)
        baseline = median(before.rss)
        ctx.log(f"swarm: {n} clients for {cfg.sse_hold_s:.0f} s (worker RSS {baseline / 1024:.0f} MB) ...")
        with swarm.Sampler(worker, monitor, COUNT_CONNECTIONS) as during:
            outcomes = swarm.run_swarm(host, port, FLOOR, n, cfg.sse_hold_s)
        time.sleep(3.0)  # clients gone: their streams must stop and give their connections back
        with swarm.Sampler(worker, monitor, COUNT_CONNECTIONS) as after:
            time.sleep(1.0)
        monitor.close()
    finally:
        ctx.stack.stop_app(server)

    ok = [o for o in outcomes if o.status == 200]
    got = [o for o in ok if o.heartbeat_at is not None]
    events = sum(1 for o in ok if o.first_event_at is not None)
    complete = sum(1 for o in outcomes if o.ended_early and o.saw_end)
    cut = sum(1 for o in outcomes if o.ended_early and not o.saw_end)
    failed = [o for o in outcomes if o.status != 200]
    # A stream that never waited a whole heartbeat interval for its next batch had no heartbeat due.
    never_due = sum(1 for o in ok if o.heartbeat_at is None and o.longest_silence < HEARTBEAT_S * 0.9)
    beats.measured = (f"{len(got):,}/{n:,} saw a ': keep-alive' (first after median "
                      f"{fmt(median([o.heartbeat_at for o in got]), 1)} s); {events:,} got a features event; "
                      f"{complete} streams completed, {cut} cut short by the server within {cfg.sse_hold_s:.0f} s"
                      + (f"; {never_due} never waited {HEARTBEAT_S:g} s for a batch" if never_due else ""))  # fmt: skip
    silences = [o.longest_silence for o in ok]
    beats.reference = (f"SSE_HEARTBEAT_S={HEARTBEAT_S:g}, whole floor plan per client, pool of {pool_size}; longest silence on a "
                       f"stream: median {fmt(median(silences), 1)} s, max {fmt(max(silences, default=None), 1)} s")  # fmt: skip
    if failed:
        first_err = next((o.error or f"HTTP {o.status}" for o in failed), "")
        beats.note = f"{len(failed)} clients failed ({first_err})"
    beats.judge(len(got) == n and not cut and not failed)
    beats.data.update(never_due=never_due, longest_silence_max_s=max(silences, default=None), clients=n, heartbeats=len(got), features_events=events, completed=complete, cut_short=cut,
                      failed=len(failed))  # fmt: skip

    peak = max(during.rss) if during.rss else None
    growth_mb = None if peak is None or baseline is None else (peak - baseline) / 1024
    settled_mb = None if not after.rss else (median(after.rss) - baseline) / 1024
    memory.measured = (f"+{fmt(growth_mb)} MB at peak ({fmt(baseline / 1024)} -> {fmt(peak / 1024)} MB); "
                       f"+{fmt(settled_mb)} MB 3 s after the clients left")  # fmt: skip
    memory.reference = f"{fmt(growth_mb * 1024 / n if growth_mb else None, 1)} KB per client"
    memory.judge(growth_mb is not None and growth_mb < 200)
    memory.data.update(baseline_kib=baseline, peak_kib=peak, settled_growth_mb=settled_mb)

    max_conns = max((c[0] for c in during.counts), default=None)
    busy_after = max((c[1] for c in after.counts), default=None)
    conns.measured = f"max {max_conns} open during the swarm; {busy_after} not idle 3 s after the clients left"
    conns.reference = f"DB_POOL_SIZE={pool_size}"
    conns.ratio = f"{max_conns}/{pool_size}"
    conns.judge(max_conns is not None and max_conns <= pool_size and not busy_after)
    conns.data.update(max_connections=max_conns, busy_after=busy_after, samples=len(during.counts))
    return [beats, memory, conns]
