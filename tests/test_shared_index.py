"""The route index shared by the workers of one machine (indoor/routing/index_store.py): built once
per graph version under a file lock, written to files, mapped by every other worker; answers
identical to networkx and full-graph pgr_dijkstra through the mapped index, after edits of costs
and of the topology, and while another process holds the build."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import psycopg2
import pytest

from indoor.queries.routing import full_graph_distance
from indoor.routing import index as route_index
from indoor.routing import index_store
from tests import routing_network
from tests.conftest import run_cli
from tests.http import get_json
from tests.test_route_index import EDITS, _compare, _follow
from tests.test_routes import make_app


def _app(url, redis_url, store: Path):
    return make_app(url, redis_url, ROUTE_INDEX="true", ROUTE_OVERLAY="false", ROUTE_INDEX_DIR=str(store))


def _edit(conn, net, what: str) -> None:
    statement = next(sql for name, sql, _ in EDITS if name == what)
    with conn, conn.cursor() as cur:
        cur.execute(statement, {"island": list(net.island) or [0]})
        assert cur.rowcount > 0, what


def test_a_second_worker_maps_the_stored_index_exactly_through_edits(pg_cluster, redis_url, tmp_path):
    """Two workers (two apps, one store): the first builds and stores each version, the second
    maps it (no build of its own) and answers as networkx and pgr_dijkstra do; an edit the
    second follows in place changes its private copies, never the stored files; versions the
    store no longer keeps stay usable by a worker that mapped them."""
    from indoor.extensions import get_db

    url, net, conn = routing_network.network_database(pg_cluster, "shared_edits", 41, (-43.1729, -22.9068), 9)
    first, second = _app(url, redis_url, tmp_path), _app(url, redis_url, tmp_path)
    base = index_store.database_dir(str(tmp_path), url)
    rnd = random.Random(41)
    try:
        with first.app_context():
            built = route_index.build_now()
            assert route_index._state(first)["last"] == {"how": "built"}
        # The builder, too, answers from the stored files once written (one copy per machine).
        assert built.loaded_from_store and isinstance(built.cost, np.memmap)
        assert index_store.versions(base) == [built.graph_key]
        with second.app_context():
            mapped = route_index.build_now()
            assert route_index._state(second)["last"] == {"how": "loaded"}
        assert mapped.loaded_from_store and mapped.graph_key == built.graph_key
        assert isinstance(mapped.edge_ids, np.memmap) and not mapped.cost.flags.writeable
        assert np.array_equal(mapped.weights["accessible"], built.weights["accessible"])
        _compare(mapped, conn, rnd)

        # A few costs change: the second worker follows from the change log, on copies.
        stored_cost = np.array(index_store.load(base, mapped.graph_key)[0]["cost"])
        _edit(conn, net, "three corridors cost more")
        with second.app_context():
            followed = get_db().read(_follow)
            assert route_index._state(second)["last"]["how"] == "followed" and followed is mapped
        assert followed.cost.flags.writeable and not np.array_equal(followed.cost, stored_cost)
        assert np.array_equal(index_store.load(base, built.graph_key)[0]["cost"], stored_cost)
        _compare(followed, conn, rnd)

        # Every cost, then the topology (a shortcut added, then corridors removed): each version
        # is built by the first worker and mapped by the second.
        for what in (
            "every cost changes",
            "a long one-way shortcut is added",
            "corridors are removed",
            "a corridor is removed (closed in the index)",
        ):
            _edit(conn, net, what)
            with first.app_context():
                built = route_index.build_now()
                assert route_index._state(first)["last"]["how"] in ("built", "recustomized", "updated"), what
            with second.app_context():
                mapped = route_index.build_now()
                assert route_index._state(second)["last"] == {"how": "loaded"}, what
            assert mapped.graph_key == built.graph_key and mapped.loaded_from_store
            _compare(mapped, conn, rnd)
            kept = index_store.versions(base)
            assert mapped.graph_key in kept and len(kept) <= index_store.KEEP_VERSIONS, kept
            if what == "every cost changes":  # mapped by the second worker, pruned by later versions
                held = mapped
                vertices = [int(v) for v in held.vertex_ids]
                pairs = [(*rnd.sample(vertices, 2), ("walking", "accessible")[k % 2]) for k in range(80)]
                answers = [held.path(*pair) for pair in pairs]
                assert sum(1 for a in answers if a and a[0] is not None) > 40
        # Its files are gone; its mapped pages are not: the same answers as before.
        assert held.graph_key not in index_store.versions(base)
        assert not (base / held.graph_key).exists()
        assert [held.path(*pair) for pair in pairs] == answers
    finally:
        first.extensions["indoor.db"].close()
        second.extensions["indoor.db"].close()
        conn.close()


@pytest.mark.parametrize("blocked_by", ["a file in the way", "a directory others may write"])
def test_an_unusable_store_leaves_each_worker_its_own_index(pg_cluster, redis_url, tmp_path, caplog, blocked_by):
    """ROUTE_INDEX_DIR that cannot be a directory, or a database directory other users may write
    (files planted there would be trusted as an index): one warning, and the worker builds and
    keeps its own index, exact, as before the store; nothing is written there."""
    name = "shared_unusable_" + blocked_by.split()[1]
    url, net, conn = routing_network.network_database(pg_cluster, name, 23, (18.0686, 59.3293), 8)
    if blocked_by == "a file in the way":
        root = tmp_path / "a-file"
        root.write_text("not a directory")
    else:
        root = tmp_path / "store"
        index_store.database_dir(str(root), url).mkdir(parents=True)
        index_store.database_dir(str(root), url).chmod(0o777)
    app = _app(url, redis_url, root)
    try:
        with app.app_context():
            index = route_index.build_now()
            assert route_index._state(app)["last"] == {"how": "built"}
        assert index is not None and not index.loaded_from_store and index.cost.flags.writeable
        assert any("route index store" in r.getMessage() and "not usable" in r.getMessage() for r in caplog.records)
        _compare(index, conn, random.Random(23))
        if root.is_file():
            assert root.read_text() == "not a directory"
        else:
            assert list(index_store.database_dir(str(root), url).iterdir()) == []
    finally:
        app.extensions["indoor.db"].close()
        conn.close()


def _logged(path: Path, message: str) -> list[dict]:
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("message") == message]


def _route_exactly(server, net, ids, rnd, cur) -> dict:
    """A new pair through `server`: the answer equals connector + full-graph pgr_dijkstra +
    connector, or both say there is no path."""
    a, b = (net.vertices[v] for v in rnd.sample(ids, 2))
    status, body = get_json(f"{server.base_url}/api/route/?from={a[1]!r},{a[2]!r},0&to={b[1]!r},{b[2]!r},0")
    assert status == 200, body
    route = body["route"]
    reference = full_graph_distance(cur, route["from"]["vertex"], route["to"]["vertex"])
    expected = route["from"]["connector_m"] + reference + route["to"]["connector_m"]
    assert abs(route["distance_m"] - expected) <= 0.01, (route, reference)
    return route


def test_one_build_per_machine_while_the_others_answer_exactly(serve, fresh_database, workdir, tmp_path):
    """Two gunicorn servers on one store (as two workers of one machine). While another process
    holds the build, both answer every route exactly (windows); then one builds, the other maps
    its files (no second build), and both answer through the index; a graph version made by an
    edit is again built once."""
    url = fresh_database("shared_build")
    assert run_cli(url, "init-db").returncode == 0
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        net = routing_network.build(cur, 12, (144.9631, -37.8136), grid=9)
    servers = [serve(workers=1, DATABASE_URL=url, ROUTE_OVERLAY="false", ROUTE_INDEX_DIR=str(tmp_path)) for _ in "ab"]
    logs = [workdir / f"gunicorn-{s.port}.log" for s in servers]
    base = index_store.database_dir(str(tmp_path), url)
    reader = psycopg2.connect(url)
    reader.autocommit = True
    cur = reader.cursor()
    ids = sorted(v for v, (level, _, _) in net.vertices.items() if level == 0 and v not in net.island)
    rnd = random.Random(12)

    def ready() -> list[dict]:
        return [line for log in logs for line in _logged(log, "route index ready")]

    holder = index_store.BuildLock(base)  # another worker's build, as far as the servers can tell
    assert holder.acquire()
    try:
        for _ in range(4):
            for server in servers:
                _route_exactly(server, net, ids, rnd, cur)
        time.sleep(1.0)
        for server, log in zip(servers, logs, strict=True):
            _route_exactly(server, net, ids, rnd, cur)
            routes = [x for x in _logged(log, "route") if x.get("cache") == "MISS"]
            assert routes and not any(x["index"] for x in routes), "no index while the build is held"
        assert ready() == [] and index_store.versions(base) == []
    finally:
        holder.release()
        holder.close()

    def settle(count: int) -> list[dict]:
        deadline = time.monotonic() + 60
        while len(ready()) < count and time.monotonic() < deadline:
            for server in servers:
                _route_exactly(server, net, ids, rnd, cur)
            time.sleep(0.05)
        return ready()

    lines = settle(2)
    assert sorted(x["how"] for x in lines) == ["built", "loaded"], lines
    graph_key = lines[0]["graph_key"]
    assert {x["graph_key"] for x in lines} == {graph_key} and index_store.versions(base) == [graph_key]
    for server, log in zip(servers, logs, strict=True):
        routes_before = len(_logged(log, "route"))
        for _ in range(6):
            _route_exactly(server, net, ids, rnd, cur)
        assert all(x["index"] for x in _logged(log, "route")[routes_before:] if x.get("cache") == "MISS")
        # Every worker maps the version's arrays from the store (the same files, one copy in memory).
        (worker,) = server.worker_pids()
        maps = Path(f"/proc/{worker}/maps").read_text()
        assert str(base / graph_key / "edge_ids.npy") in maps and str(base / graph_key / "cost.npy") in maps

    # Every cost changes (too many edges to follow from the log): one build for the new version.
    cur.execute(
        "UPDATE nav_edges_final SET cost = CASE WHEN cost >= 0 THEN cost * 1.5 ELSE cost END,"
        " reverse_cost = CASE WHEN reverse_cost >= 0 THEN reverse_cost * 1.5 ELSE reverse_cost END"
    )
    settle(4)
    lines = [line for log in logs for line in _logged(log, "route index ready")[1:]]  # each server's second
    assert sorted(x["how"] for x in lines) == ["loaded", "recustomized"], lines
    assert lines[0]["graph_key"] == lines[1]["graph_key"] != graph_key
    for _ in range(6):
        for server in servers:
            _route_exactly(server, net, ids, rnd, cur)
    assert len(_logged(logs[0], "route index stored") + _logged(logs[1], "route index stored")) == 2
    reader.close()
