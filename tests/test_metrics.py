"""/metrics: Prometheus text, right under several gunicorn workers, and only where it should be."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from indoor import create_app, metrics
from tests.http import get


def parse(text: str) -> dict:
    """{(sample name, frozenset(labels)): value}"""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def make_app(database_url):
    apps = []

    def make(**config):
        app = create_app({"DATABASE_URL": database_url, "LOG_FORMAT": "text", **config})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["indoor.db"].close()


def test_metrics_are_off_unless_enabled(make_app):
    response = make_app().test_client().get("/metrics")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_metrics_count_requests_per_endpoint_and_the_pool(make_app):
    client = make_app(METRICS_ENABLED=True, DB_POOL_SIZE=3).test_client()
    before = parse(client.get("/metrics").get_data(as_text=True))
    for _ in range(3):
        assert client.get("/api/health/ready").status_code == 200
    assert client.get("/api/rooms/999999999/nothing-here").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = parse(response.get_data(as_text=True))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    ready = {"endpoint": "/api/health/ready", "method": "GET"}
    assert delta("indoor_http_requests_total", **ready, status="200") == 3
    assert delta("indoor_http_request_duration_seconds_count", **ready) == 3
    assert delta("indoor_http_request_duration_seconds_bucket", **ready, le="+Inf") == 3
    # Unknown paths are one label, not one series per path a scanner tries.
    assert delta("indoor_http_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    # The pool: every connection is back once the requests are done.
    assert value(after, "indoor_db_pool_in_use") == 0 and value(after, "indoor_db_pool_waiting") == 0
    assert value(after, "indoor_db_pool_size") >= 3


def test_route_and_stream_observations_show_up(make_app):
    client = make_app(METRICS_ENABLED=True).test_client()
    before = parse(client.get("/metrics").get_data(as_text=True))
    metrics.observe_route(0.012, cache_hit=False)
    metrics.observe_route(None, cache_hit=True)
    metrics.observe_route(None, cache_hit=True)
    metrics.sse_stream_opened()
    metrics.sse_stream_opened()
    metrics.sse_stream_closed(features_sent=1500, disconnected=False)
    after = parse(client.get("/metrics").get_data(as_text=True))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("indoor_route_cache_lookups_total", result="hit") == 2
    assert delta("indoor_route_cache_lookups_total", result="miss") == 1
    hits = value(after, "indoor_route_cache_lookups_total", result="hit")
    lookups = hits + value(after, "indoor_route_cache_lookups_total", result="miss")
    assert value(after, "indoor_route_cache_hit_ratio") == pytest.approx(hits / lookups)
    assert delta("indoor_pgrouting_duration_seconds_count") == 1
    assert delta("indoor_pgrouting_duration_seconds_bucket", le="0.025") == 1
    assert delta("indoor_sse_streams_open") == 1
    assert delta("indoor_sse_streams_total", outcome="completed") == 1
    assert delta("indoor_sse_features_sent_total") == 1500
    metrics.sse_stream_closed(features_sent=0, disconnected=True)


def test_routes_count_how_their_paths_were_found_and_overlay_builds_are_counted(make_app, sql):
    """A computed route counts its method (overlay, window, full_graph); a build its result."""
    from indoor.routing import overlay

    app = make_app(METRICS_ENABLED=True, ROUTE_OVERLAY_MAX_SHARE="1000")
    client = app.test_client()
    before = parse(client.get("/metrics").get_data(as_text=True))
    with app.app_context():
        first = overlay.build_now(force=True)  # built
        second = overlay.build_now()  # already the current graph's
    assert second == "fresh"
    low, high = (sql("SELECT min(ogc_fid) FROM room_points WHERE level = %s", (level,))[0][0] for level in (0, 2))
    assert client.get("/api/route/", query_string={"from": low, "to": high}).status_code == 200
    windows_only = make_app(METRICS_ENABLED=True, ROUTE_OVERLAY="false").test_client()
    assert windows_only.get("/api/route/", query_string={"from": high, "to": low}).status_code == 200
    after = parse(client.get("/metrics").get_data(as_text=True))

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("indoor_route_overlay_builds_total", result="built") == 1
    assert delta("indoor_route_overlay_builds_total", result="fresh") == 1
    assert delta("indoor_route_overlay_build_seconds_count") == 1
    assert delta("indoor_route_overlay_build_seconds_sum") >= first.build_ms / 1000
    assert delta("indoor_route_searches_total", method="overlay") == 1
    assert (
        delta("indoor_route_searches_total", method="window")
        + delta("indoor_route_searches_total", method="full_graph")
        == 1
    )


def test_metrics_refuse_anything_that_came_through_a_proxy(make_app):
    client = make_app(METRICS_ENABLED=True).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 404


def _pool_size_written_by(directory, pid: int) -> float | None:
    from prometheus_client.mmap_dict import MmapedDict

    path = directory / f"gauge_livesum_{pid}.db"
    if not path.exists():
        return None
    for key, val, *_ in MmapedDict.read_all_values_from_file(str(path)):
        if '"indoor_db_pool_size"' in key:
            return val
    return None


def _scrape(server) -> dict:
    status, _, body = get(server.base_url + "/metrics")
    assert status == 200
    return parse(body.decode())


@pytest.mark.slow
def test_metrics_sum_over_gunicorn_workers_and_forget_dead_ones(serve, workdir):
    directory = workdir / "metrics-multiproc"
    server = serve(workers=2, METRICS_ENABLED=1, PROMETHEUS_MULTIPROC_DIR=directory, DB_POOL_SIZE=4)
    url = server.base_url + "/api/openapi.json"
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(lambda _: get(url)[0], range(300))) == {200}
    workers = server.worker_pids()
    assert len(workers) == 2
    written_by = {int(name.rsplit("_", 1)[1].split(".")[0]) for name in os.listdir(directory) if "counter" in name}
    assert workers <= written_by, "both workers answered requests"
    # Whichever worker answers the scrape, it reports all 300 (the scrapes count under /metrics).
    for _ in range(6):
        samples = _scrape(server)
        assert (
            value(samples, "indoor_http_requests_total", endpoint="/api/openapi.json", method="GET", status="200")
            == 300
        )
        assert value(samples, "indoor_db_pool_size") == 2 * 4  # one pool per live worker

    killed = sorted(workers)[0]
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replaced = server.worker_pids()
        (new,) = replaced - workers or {None}
        # The replacement has created its pool: its own gauge file says so.
        if new and _pool_size_written_by(directory, new) == 4:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("no replacement worker came up")
    assert not any(name.endswith(f"_{killed}.db") and "livesum" in name for name in os.listdir(directory))
    # Counters outlive the worker that counted them; its gauges are gone.
    samples = _scrape(server)
    assert value(samples, "indoor_http_requests_total", endpoint="/api/openapi.json", method="GET", status="200") == 300
    assert value(samples, "indoor_db_pool_size") == 8  # not 12: the dead worker's pool is not counted
