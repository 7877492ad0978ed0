"""The in-memory route index: customizable contraction hierarchies (RoutingKit, `pyroutingkit`).

Each worker keeps one index, built for one graph version (the graph key, queries/versions.py):
the network's topology contracted once (a vertex order by nested dissection, then shortcuts),
and one metric per profile on it (walking; accessible, where stairs and escalators are closed).
A route whose snapshot has the index's graph key is answered by one bidirectional search in
the index (tens to hundreds of microseconds whatever the campus, in a structure built
beforehand: nothing the request loads grows with the network); the path's edges are then read
from nav_edges_final in the route's snapshot as for any other search, so `distance_m` is the
sum of the real float costs.

Exact: an edge's cost is an integer number of tenths of a millimetre (`SCALE`), so sums are
exact integers and the index returns a path that is shortest for those integer costs; its real
cost is within (edges of both paths) x 0.05 mm of pgRouting's optimum (equal, in practice, to
the centimetre the API rounds to). Directed as pgRouting reads it: source->target costs `cost`,
target->source `reverse_cost`, negative = closed. A graph the index cannot represent exactly
(NULL or non-finite costs, an edge longer than MAX_EDGE_M, a campus wider than MAX_SPAN_DEG) is
not indexed: its routes are searched by windows/overlay as before.

Fresh: a route that finds no index for its graph key starts a build in the background and is
answered as if there were no index (windows/overlay, exact). The build reads the network in one
snapshot; when only costs changed (the same edges between the same vertices) it keeps the
topology and re-customises (a few changed arcs: updated in place, 0.1 ms each; else a new
metric); otherwise it builds a new topology. The C++ work runs in an OS thread with the GIL
released (gevent's thread pool under gunicorn), so it never stalls the worker's other requests;
requests never wait for a build.

Once per machine: a version's arrays and topology are written to files (index_store.py,
ROUTE_INDEX_DIR) by the first worker that needs it, under a file lock; the other workers map the
arrays read-only and load the topology from its vertex order (no nested dissection), then
customise their own metrics (pyroutingkit keeps a customised metric in the process's heap: it
cannot be shared). Arrays a worker changes in place (an edit followed) are copied first.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from flask import current_app

from indoor.extensions import get_db, get_settings
from indoor.queries import route_index as queries
from indoor.queries.versions import versions
from indoor.routing import index_store
from indoor.routing.background import run_logged, run_off_loop, start_once

log = logging.getLogger("indoor.route_index")

_STATE = "indoor.route_index"
PROFILES = ("walking", "accessible")

_PAGE = os.sysconf("SC_PAGE_SIZE")
SCALE = 10_000  # integer costs in tenths of a millimetre
MAX_EDGE_M = 10_000.0  # an edge longer than this is a data error: the graph is not indexed
MAX_SPAN_DEG = 1.0  # nor a network spread over more than this (no campus is; sums stay far below 2^31)
TRUSTED_BELOW = 2**30  # a distance at or above this (107 km) is not trusted: windows answer
IN_PLACE_ARCS = 256  # at most this many changed arcs are re-weighted in place on the event loop
_INF = None  # pyroutingkit.INF_WEIGHT, set on import


def _library():
    global _INF
    import pyroutingkit

    _INF = pyroutingkit.INF_WEIGHT
    return pyroutingkit


class NotIndexable(Exception):
    """The graph cannot be represented exactly in integer costs (see the module docstring)."""


@dataclass
class RouteIndex:
    graph_key: str
    vertex_ids: np.ndarray  # sorted vertex ids; a vertex's position is its index node
    edge_ids: np.ndarray
    sources: np.ndarray  # index nodes of each edge's source and target
    targets: np.ndarray
    cost: np.ndarray  # float costs, as pgRouting reads them
    reverse_cost: np.ndarray
    accessible: np.ndarray  # bool per edge
    topology: object  # pyroutingkit.CCHTopology (shared by the metrics of later cost-only versions)
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # profile -> uint32 per arc
    metrics: dict[str, object] = field(default_factory=dict)  # profile -> pyroutingkit.CCHMetric
    build_ms: float = 0.0
    customize_ms: float = 0.0
    # Edges added since the topology was built (id -> source, target, cost, reverse_cost,
    # accessible), routed exactly beside it until the next build (see _path_with_added).
    added: dict = field(default_factory=dict)
    # Per profile, a second metric for routes with active closures: (metric, the arcs it has
    # closed). A route re-weights it to its closures' arcs (a few arcs, in place) and searches,
    # synchronously; dropped whenever the weights above change (see closed_ready()).
    closed_metrics: dict = field(default_factory=dict)
    # Other per-version arrays held with the index and stored with it (name -> array; names are
    # file names: letters, digits, '_', '.', '-'), mapped read-only when loaded from the store.
    extra_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    loaded_from_store: bool = False
    memory: dict = field(default_factory=dict)  # what loading it added (from_store), for the log

    @property
    def edge_count(self) -> int:
        return len(self.edge_ids)

    def same_topology(self, edge_ids, sources, targets) -> bool:
        return (
            len(edge_ids) == len(self.edge_ids)
            and np.array_equal(edge_ids, self.edge_ids)
            and np.array_equal(sources, self.sources)
            and np.array_equal(targets, self.targets)
        )

    def path(self, source_vertex: int, target_vertex: int, profile: str, closed: tuple = ()):
        """(cost, [(node, edge, cost), ...]) of a shortest path; (None, []) when there is none;
        None when the index cannot tell (a vertex it does not hold, a distance it does not trust).
        `closed`: edge ids closed (the active closures; needs closed_ready() first).

        Synchronous and short: no other request runs between the search and its answer.
        """
        if closed:
            metric = self._closed_metric(profile, closed)
            if metric is None or self.added:
                return None  # not prepared, or edges beside the index: the searches answer
        elif self.added:
            return self._path_with_added(source_vertex, target_vertex, profile)
        else:
            metric = self.metrics[profile]
        s, t = self._node(source_vertex), self._node(target_vertex)
        if s is None or t is None:
            return None
        distance, nodes, arcs = metric.query(s, t)
        if distance >= _INF:
            return None, []
        if distance >= TRUSTED_BELOW:
            return None
        rows = self._rows(nodes, arcs)
        return (sum(r[2] for r in rows), rows) if rows is not None else None

    def nearest_of(self, vertex: int, candidates: list, outward: bool, profile: str):
        """The candidate with the smallest path cost + connector from `vertex` (outward) or to
        it, ties to the smaller room id, as category.py's search decides it: [(total, room id,
        candidate)] of the best; [] when none is reached; None when the index cannot tell.
        `candidates` have .snap.vertex, .snap.metres and .room.id. One many-to-many sweep gives
        integer costs; the candidates within rounding of the best are then costed exactly (the
        float sums of their paths' edges)."""
        if self.added or self._node(vertex) is None:
            return None
        nodes = [self._node(c.snap.vertex) for c in candidates]
        if any(n is None for n in nodes):
            return None
        here = np.asarray([self._node(vertex)], dtype=np.uint32)
        there = np.asarray(nodes, dtype=np.uint32)
        metric = self.metrics[profile]
        table = metric.distances_many_to_many(here, there) if outward else metric.distances_many_to_many(there, here)
        distances = np.asarray(table, dtype=np.int64).reshape(-1)
        if (distances[distances < _INF] >= TRUSTED_BELOW).any():
            return None
        totals = [(int(d) / SCALE + c.snap.metres, c) for d, c in zip(distances, candidates, strict=True) if d < _INF]
        if not totals:
            return []
        best = min(t for t, _ in totals)
        exact = []
        for total, c in totals:
            if total > best + 0.05:  # farther than any rounding (0.05 mm per edge) away: not the best
                continue
            found = self.path(vertex, c.snap.vertex, profile) if outward else self.path(c.snap.vertex, vertex, profile)
            if found is None or found[0] is None:
                return None
            exact.append((found[0] + c.snap.metres, c.room.id, c))
        return [min(exact, key=lambda r: (r[0], r[1]))]

    def _closed_metric(self, profile: str, closed: tuple):
        """The profile's closures metric with exactly the arcs of `closed` closed: the arcs that
        differ from its last closures are re-weighted in place (closed: infinite; reopened: the
        profile's weight)."""
        entry = self.closed_metrics.get(profile)
        if entry is None:
            return None
        metric, current = entry
        ids = np.asarray(closed, dtype=np.int64)
        at = np.searchsorted(self.edge_ids, ids)
        present = at < self.edge_count
        present[present] &= self.edge_ids[at[present]] == ids[present]
        at = at[present]
        wanted = frozenset(np.concatenate([at, at + self.edge_count]).tolist())
        if wanted != current:
            close = np.asarray(sorted(wanted - current), dtype=np.uint32)
            reopen = np.asarray(sorted(current - wanted), dtype=np.uint32)
            if len(close):
                metric.update_weights(close, np.full(len(close), _INF, dtype=np.uint32))
            if len(reopen):
                metric.update_weights(reopen, self.weights[profile][reopen])
            self.closed_metrics[profile] = (metric, wanted)
        return metric

    def _node(self, vertex: int) -> int | None:
        at = int(np.searchsorted(self.vertex_ids, vertex))
        return at if at < len(self.vertex_ids) and self.vertex_ids[at] == vertex else None

    def _rows(self, nodes, arcs) -> list | None:
        m = self.edge_count
        rows = []
        for k, arc in enumerate(arcs):
            e = arc % m
            forward = arc < m
            if (self.sources[e] if forward else self.targets[e]) != nodes[k]:
                return None  # never seen; never answer a path that does not join up
            edge_cost = self.cost[e] if forward else self.reverse_cost[e]
            rows.append((int(self.vertex_ids[nodes[k]]), int(self.edge_ids[e]), float(edge_cost)))
        return rows

    def _path_with_added(self, source_vertex: int, target_vertex: int, profile: str):
        """Exact with a few edges added since the topology was built: any path is runs in the
        indexed graph joined by added edges, so a Dijkstra over {source, target, the added
        edges' ends} (runs: index distances; added edges: their own integer costs) is the
        optimum; its runs are then expanded by index searches."""
        ends = {source_vertex, target_vertex}
        arcs = []  # (from vertex, to vertex, weight, (node, edge, cost))
        for edge_id, (a, b, cost, reverse_cost, accessible) in self.added.items():
            ends.update((a, b))
            if profile == "accessible" and not accessible:
                continue
            for u, v, c in ((a, b, cost), (b, a, reverse_cost)):
                if c >= 0:
                    arcs.append((u, v, int(np.rint(c * SCALE)), (u, edge_id, float(c))))
        vertices = sorted(ends)
        nodes = [self._node(v) for v in vertices]
        indexed = [k for k, node in enumerate(nodes) if node is not None]
        if self._node(source_vertex) is None and not any(u == source_vertex for u, *_ in arcs):
            return None
        metric = self.metrics[profile]
        between = {}
        if indexed:
            ids = np.asarray([nodes[k] for k in indexed], dtype=np.uint32)
            table = metric.distances_many_to_many(ids, ids)
            for i, ki in enumerate(indexed):
                for j, kj in enumerate(indexed):
                    d = int(table[i][j])
                    if ki != kj and d < _INF:
                        if d >= TRUSTED_BELOW:
                            return None
                        between[vertices[ki], vertices[kj]] = d
        # Dijkstra over the few vertices (dense: a plain scan).
        best = {source_vertex: 0}
        came = {}
        done = set()
        while True:
            open_ = [(d, v) for v, d in best.items() if v not in done]
            if not open_:
                break
            d, u = min(open_)
            done.add(u)
            if u == target_vertex:
                break
            steps = [(v, w, None) for (x, v), w in between.items() if x == u]
            steps += [(v, w, row) for x, v, w, row in arcs if x == u]
            for v, w, row in steps:
                if v not in best or d + w < best[v]:
                    best[v], came[v] = d + w, (u, row)
        if target_vertex not in done:
            return None, []
        if best[target_vertex] >= TRUSTED_BELOW:
            return None
        legs, v = [], target_vertex
        while v != source_vertex:
            u, row = came[v]
            legs.append((u, v, row))
            v = u
        rows = []
        for u, v, row in reversed(legs):
            if row is not None:
                rows.append(row)
                continue
            _, run_nodes, run_arcs = metric.query(self._node(u), self._node(v))
            run = self._rows(run_nodes, run_arcs)
            if run is None:
                return None
            rows += run
        return sum(r[2] for r in rows), rows


# -- building (pure: arrays in, index out; the C++ parts release the GIL) -------------------


def _check(arrays: queries.GraphArrays) -> None:
    edges = arrays.edges
    if not arrays.complete:
        raise NotIndexable("an edge has a NULL id, end or cost")
    for column in ("cost", "reverse_cost"):
        values = edges[column]
        if not np.isfinite(values).all():
            raise NotIndexable(f"an edge has a non-finite {column}")
        if (values > MAX_EDGE_M).any():
            raise NotIndexable(f"an edge's {column} exceeds {MAX_EDGE_M:.0f} m")
    vertices = arrays.vertices
    if len(vertices):
        lon, lat = vertices["lon"], vertices["lat"]
        if not (np.isfinite(lon).all() and np.isfinite(lat).all() and np.isfinite(vertices["level"]).all()):
            raise NotIndexable("a vertex has a non-finite position or level")
        if np.ptp(lon) > MAX_SPAN_DEG or np.ptp(lat) > MAX_SPAN_DEG:
            raise NotIndexable("the network spans more than a campus")


def _weights(cost, reverse_cost, accessible) -> dict[str, np.ndarray]:
    """uint32 per arc (forward arcs 0..m-1, then backward arcs m..2m-1), per profile."""
    inf = np.uint32(_INF)
    out = {}
    for profile in PROFILES:
        allowed = accessible if profile == "accessible" else np.ones(len(cost), bool)
        parts = []
        for c in (cost, reverse_cost):
            w = np.rint(np.where(c >= 0, c, 0.0) * SCALE).astype(np.uint32)
            parts.append(np.where((c >= 0) & allowed, w, inf))
        out[profile] = np.concatenate(parts)
    return out


def _columns(arrays: queries.GraphArrays):
    edges = arrays.edges
    edge_ids = edges["id"].astype(np.int64)
    ends = np.concatenate([edges["source"], edges["target"]]).astype(np.int64)
    vertex_ids = np.unique(ends)
    sources = np.searchsorted(vertex_ids, edges["source"].astype(np.int64)).astype(np.uint32)
    targets = np.searchsorted(vertex_ids, edges["target"].astype(np.int64)).astype(np.uint32)
    return edge_ids, vertex_ids, sources, targets


def _order_positions(vertex_ids: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the vertex order (nested dissection by inertial flow) sees each vertex: the levels
    of a campus side by side, not stacked, so that the cuts it finds between levels are the few
    stairs and lifts rather than every corridor of every level at once (a station of 16 levels:
    a customisation ~10x faster). Only the order's quality depends on it, never a route; a
    vertex without a row stands at the first one's place."""
    lon = np.zeros(len(vertex_ids), np.float64)
    lat = np.zeros(len(vertex_ids), np.float64)
    level = np.zeros(len(vertex_ids), np.float64)
    if len(known):
        at = np.searchsorted(vertex_ids, known["id"].astype(np.int64))
        inside = at < len(vertex_ids)
        inside[inside] &= vertex_ids[at[inside]] == known["id"][inside]
        lon[:], lat[:], level[:] = float(known["lon"][0]), float(known["lat"][0]), float(known["level"][0])
        lon[at[inside]] = known["lon"][inside]
        lat[at[inside]] = known["lat"][inside]
        level[at[inside]] = known["level"][inside]
    _, rank = np.unique(level, return_inverse=True)
    width = float(np.ptp(lon)) * 1.5 + 1e-4 if len(lon) else 0.0
    return lat.astype(np.float32), (lon + rank * width).astype(np.float32)


def build(arrays: queries.GraphArrays, previous: RouteIndex | None = None) -> RouteIndex:
    """A new index for `arrays`: reusing `previous`'s topology when the edges are the same.

    Runs for seconds on a large campus: call it off the event loop (`run_off_loop`).
    """
    prk = _library()
    _check(arrays)
    edges = arrays.edges
    edge_ids, vertex_ids, sources, targets = _columns(arrays)
    cost = edges["cost"].astype(np.float64)
    reverse_cost = edges["reverse_cost"].astype(np.float64)
    accessible = edges["accessible"].astype(bool)
    started = time.perf_counter()
    if previous is not None and previous.same_topology(edge_ids, sources, targets):
        topology, build_ms = previous.topology, 0.0
    else:
        lat, lon = _order_positions(vertex_ids, arrays.vertices)
        topology = prk.CCHTopology()
        topology.build(
            np.concatenate([sources, targets]), np.concatenate([targets, sources]), lat, lon, len(vertex_ids)
        )
        build_ms = (time.perf_counter() - started) * 1000
    index = RouteIndex(
        graph_key=arrays.graph_key,
        vertex_ids=vertex_ids,
        edge_ids=edge_ids,
        sources=sources,
        targets=targets,
        cost=cost,
        reverse_cost=reverse_cost,
        accessible=accessible,
        topology=topology,
        weights=_weights(cost, reverse_cost, accessible),
        build_ms=build_ms,
    )
    _customize(prk, index)
    return index


def changed_arcs(index: RouteIndex, arrays: queries.GraphArrays) -> dict[str, np.ndarray] | None:
    """The arcs whose weight differs between `index` and `arrays`, per profile, when the edges
    are the same (None: the topology changed)."""
    _library()
    edge_ids, _, sources, targets = _columns(arrays)
    if not index.same_topology(edge_ids, sources, targets):
        return None
    edges = arrays.edges
    weights = _weights(edges["cost"].astype(np.float64), edges["reverse_cost"].astype(np.float64),
                       edges["accessible"].astype(bool))  # fmt: skip
    return {p: np.flatnonzero(weights[p] != index.weights[p]).astype(np.uint32) for p in PROFILES}, weights


def update_in_place(index: RouteIndex, arrays: queries.GraphArrays, changed, weights) -> None:
    """Re-weight a few arcs of `index` and make it `arrays`' version. Synchronous (milliseconds):
    no request sees the index half-updated."""
    edges = arrays.edges
    for profile, arcs in changed.items():
        if len(arcs):
            index.metrics[profile].update_weights(arcs, weights[profile][arcs])
    index.weights = weights
    index.closed_metrics = {}
    index.cost = edges["cost"].astype(np.float64)
    index.reverse_cost = edges["reverse_cost"].astype(np.float64)
    index.accessible = edges["accessible"].astype(bool)
    index.graph_key = arrays.graph_key


MAX_ADDED = 8  # edges added since the topology was built that routes handle beside it


def apply_changes(index: RouteIndex, found: queries.Changes, graph_key: str) -> int | None:
    """Bring `index` to the version `graph_key` from the changed edges `found` lists: re-weight
    the arcs of edges whose costs or kind changed; close a deleted edge both ways (exact: no
    path takes it); keep an added or re-attached edge beside the index (at most MAX_ADDED, see
    RouteIndex.added). The number of arcs changed, or None (nothing done: more added edges, or
    a cost the index cannot hold). Synchronous: no request sees the index half-updated."""
    _library()
    m = index.edge_count
    rows = {int(r[0]): r for r in found.rows}
    if any(v is None for r in rows.values() for v in r[:5]):
        return None
    for r in rows.values():
        if not (np.isfinite(r[3]) and np.isfinite(r[4])) or max(r[3], r[4]) > MAX_EDGE_M:
            return None
    _own_arrays(index)
    added = dict(index.added)
    index.closed_metrics = {}  # their weights are the old ones: customised again when next asked
    close, reweight = [], []  # positions in the index
    for edge_id in found.edge_ids:
        at = int(np.searchsorted(index.edge_ids, edge_id))
        indexed = at < m and index.edge_ids[at] == edge_id
        row = rows.get(edge_id)
        added.pop(edge_id, None)
        if row is None:  # deleted
            if indexed:
                close.append(at)
            continue
        source, target = index._node(row[1]), index._node(row[2])
        if indexed and source == index.sources[at] and target == index.targets[at]:
            reweight.append((at, row))
            continue
        if indexed:  # re-attached: the old arcs close, the edge is routed beside the index
            close.append(at)
        added[edge_id] = (int(row[1]), int(row[2]), float(row[3]), float(row[4]), bool(row[5]))
    if len(added) > MAX_ADDED:
        return None
    arcs_updated = 0
    if close:
        at_close = np.asarray(close, dtype=np.int64)
        arcs = np.concatenate([at_close, at_close + m]).astype(np.uint32)
        for profile in PROFILES:
            closed = np.full(len(arcs), _INF, dtype=np.uint32)
            index.metrics[profile].update_weights(arcs, closed)
            index.weights[profile][arcs] = closed
        arcs_updated += len(arcs)
        index.cost[at_close], index.reverse_cost[at_close] = -1.0, -1.0
    if reweight:
        at = np.asarray([p for p, _ in reweight], dtype=np.int64)
        cost = np.array([r[3] for _, r in reweight], dtype=np.float64)
        reverse_cost = np.array([r[4] for _, r in reweight], dtype=np.float64)
        accessible = np.array([bool(r[5]) for _, r in reweight])
        new = _weights(cost, reverse_cost, accessible)
        arcs = np.concatenate([at, at + m]).astype(np.uint32)
        for profile in PROFILES:
            differ = index.weights[profile][arcs] != new[profile]
            if differ.any():
                index.metrics[profile].update_weights(arcs[differ], new[profile][differ])
                index.weights[profile][arcs[differ]] = new[profile][differ]
                arcs_updated += int(differ.sum())
        index.cost[at], index.reverse_cost[at], index.accessible[at] = cost, reverse_cost, accessible
    index.added = added
    index.graph_key = graph_key
    return arcs_updated


def _own_arrays(index: RouteIndex) -> None:
    """Private copies of the arrays an edit changes in place, when they are the store's
    read-only maps (the files stay the version they were written for)."""
    for name in ("cost", "reverse_cost", "accessible"):
        array = getattr(index, name)
        if not array.flags.writeable:
            setattr(index, name, np.array(array))
    index.weights = {p: w if w.flags.writeable else np.array(w) for p, w in index.weights.items()}


# -- the machine's store (index_store.py) ------------------------------------------------------

_ARRAYS = ("vertex_ids", "edge_ids", "sources", "targets", "cost", "reverse_cost", "accessible")


def _customize(prk, index: RouteIndex) -> None:
    """One metric per profile on the index's topology, customised to its weights (timed)."""
    started = time.perf_counter()
    for profile in PROFILES:
        metric = prk.CCHMetric(index.topology)
        metric.customize(index.weights[profile])
        index.metrics[profile] = metric
    index.customize_ms = (time.perf_counter() - started) * 1000


def to_arrays(index: RouteIndex) -> dict[str, np.ndarray]:
    arrays = {name: getattr(index, name) for name in _ARRAYS}
    arrays.update({f"weights.{p}": w for p, w in index.weights.items()})
    arrays.update({f"extra.{name}": a for name, a in index.extra_arrays.items()})
    return arrays


def from_store(base, graph_key: str) -> RouteIndex | None:
    """The index of `graph_key` from the store: arrays mapped, topology loaded from its vertex
    order, one metric per profile customised here. None when the store does not hold it. Runs
    for a second or so on a large campus: off the event loop (`run_off_loop`)."""
    prk = _library()
    started = time.perf_counter()
    rss_before = _rss_mb()
    found = index_store.load(base, graph_key, prk.CCHTopology)
    if found is None or found[1] is None:
        return None
    arrays, topology, meta = found
    build_ms = (time.perf_counter() - started) * 1000
    rss_topology = _rss_mb()
    index = RouteIndex(
        graph_key=graph_key,
        **{name: arrays[name] for name in _ARRAYS},
        topology=topology,
        weights={p: arrays[f"weights.{p}"] for p in PROFILES},
        extra_arrays={k[len("extra.") :]: a for k, a in arrays.items() if k.startswith("extra.")},
        build_ms=build_ms,
        loaded_from_store=True,
    )
    _customize(prk, index)
    # What this worker holds of its own (RSS growth, approximate: other requests run meanwhile);
    # the arrays are the store's maps, shared.
    index.memory = {
        "topology_mb": round(rss_topology - rss_before, 1),
        "metrics_mb": round(_rss_mb() - rss_topology, 1),
        "mapped_mb": round(sum(a.nbytes for a in arrays.values()) / 2**20, 1),
    }
    return index


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except OSError:
        return 0.0


def _store_dir(app):
    """This database's directory in the machine's store; None when it cannot be used (the
    worker then builds its own index, as before)."""
    state = _state(app)
    if "store" not in state:
        settings = get_settings()
        base = index_store.database_dir(settings.route_index_dir, settings.database_url)
        try:
            index_store.ensure_private(base)
            probe = index_store.BuildLock(base)
            probe.close()
        except OSError as exc:
            log.warning("route index store %s not usable (%s): each worker builds its own index", base, exc)
            base = None
        state["store"] = base
    return state["store"]


def _trim_heap() -> None:
    """Give the heap freed by a build back to the system (glibc keeps it in the build thread's
    arena otherwise: tens of MB per worker at 200,000 edges)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def closed_ready(index: RouteIndex, profile: str) -> bool:
    """Make sure `index` has its closures metric for `profile` (customised once per graph version
    and profile, off the event loop); False when the index moved on meanwhile (the route is then
    searched without it)."""
    if profile in index.closed_metrics:
        return True
    prk = _library()
    graph_key = index.graph_key
    weights = index.weights[profile].copy()
    metric = prk.CCHMetric(index.topology)
    run_off_loop(metric.customize, weights)
    if index.graph_key != graph_key:
        return False
    index.closed_metrics.setdefault(profile, (metric, frozenset()))
    return True


# -- the worker's index ------------------------------------------------------------------------


def _state(app) -> dict:
    return app.extensions.setdefault(
        _STATE,
        {"lock": threading.Lock(), "index": None, "building": False, "failed": {}, "last": None, "has_changes": False},
    )


def held(graph_key: str) -> RouteIndex | None:
    """The index of this graph version if this worker holds it now; nothing else is done."""
    found = _state(current_app._get_current_object())["index"]
    return found if found is not None and found.graph_key == graph_key else None


def current(graph_key: str, cur=None) -> RouteIndex | None:
    """The index of this graph version if there is one. An index of an older version is brought
    up to it here when the edits in between changed only the costs of a few edges (read with
    `cur`, in the route's snapshot: a read bounded by the edit, not the campus). Otherwise a
    build is started (in the background, unless one runs) and None is returned."""
    app = current_app._get_current_object()
    state = _state(app)
    index = state["index"]
    if index is not None and index.graph_key == graph_key:
        if index.added and not state["building"]:
            request_build(app, state)  # a new topology absorbs the added edges, in the background
        return index
    if index is not None and queries.key_order(graph_key) < queries.key_order(index.graph_key):
        return None  # a snapshot older than the index (the index never goes back)
    if index is not None and cur is not None and state["has_changes"]:
        since = index.graph_key
        found = queries.changes(cur, since, graph_key, IN_PLACE_ARCS // 2)
        # The reads above let other requests run: apply only to the index they were read for.
        if found.complete and state["index"] is index and index.graph_key == since:
            started = time.perf_counter()
            arcs = apply_changes(index, found, graph_key)
            if arcs is not None:
                state["last"] = {"how": "followed", "arcs": arcs, "added": len(index.added)}
                if index.added:
                    request_build(app, state)  # a new topology absorbs them, in the background
                log.info(
                    "route index ready",
                    extra={"graph_key": graph_key, "how": "followed", "edges_changed": len(found.edge_ids),
                           "arcs_updated": arcs, "edges_added": len(index.added),
                           "total_ms": round((time.perf_counter() - started) * 1000, 2)},
                )  # fmt: skip
                return index
        elif state["index"] is not None and state["index"].graph_key == graph_key:
            return state["index"]
    if state["failed"].get("key") != graph_key:
        request_build(app, state)
    return None


def request_build(app, state=None) -> bool:
    state = state or _state(app)
    return start_once(state, "building", _build_in_background, (app, state), "route-index")


def _build_in_background(app, state) -> None:
    def build():
        with app.app_context():
            build_now(state)

    try:
        run_logged(log, build, "route index not built", "route index build failed")
    finally:
        with state["lock"]:
            state["building"] = False


def build_now(state=None) -> RouteIndex | None:
    """Make this worker's index the current graph version: mapped from the machine's store when
    another worker wrote it, else built here (under the store's lock, then written to it)."""
    app = current_app._get_current_object()
    state = state or _state(app)
    base = _store_dir(app)
    if base is None:
        return _build_here(state)

    def read_key() -> str:
        graph_key, state["has_changes"] = get_db().read(
            lambda cur: (versions(cur)["graph_key"], queries.has_changes(cur))
        )
        return graph_key

    graph_key = read_key()
    previous = state["index"]
    if previous is not None and previous.graph_key == graph_key and not previous.added:
        return previous
    loaded = _load_stored(state, base, graph_key)
    if loaded is not None:
        return loaded
    lock, held = index_store.BuildLock(base), False
    try:
        held = lock.acquire(lambda: index_store.exists(base, graph_key), get_settings().route_index_load_timeout_s * 10)
        graph_key = read_key() if held else graph_key  # the newest, now that no one else builds
        loaded = _load_stored(state, base, graph_key)
        if loaded is not None:
            return loaded
        index = _build_here(state)
        if held and index is not None and not index.added and index is state["index"]:
            started = time.perf_counter()
            stored_key = index.graph_key
            run_off_loop(index_store.save, base, stored_key, to_arrays(index), index.topology)
            _adopt_stored(index, base, stored_key)
            pruned = index_store.prune(base, sorted(index_store.versions(base), key=queries.key_order, reverse=True))
            log.info(
                "route index stored",
                extra={"graph_key": index.graph_key, "store": str(base), "pruned": len(pruned),
                       "total_ms": round((time.perf_counter() - started) * 1000, 1)},
            )  # fmt: skip
        return index
    finally:
        if held:
            lock.release()
        lock.close()
        _trim_heap()


def _adopt_stored(index: RouteIndex, base, graph_key: str) -> None:
    """Swap the builder's own arrays for the maps of the files it just wrote: one copy per
    machine, the builder's included. Synchronous: no request sees the index half-swapped."""
    found = index_store.load(base, graph_key)
    if found is None or index.graph_key != graph_key or index.added:
        return  # pruned already, or followed an edit meanwhile: keep its own
    arrays = found[0]
    for name in _ARRAYS:
        setattr(index, name, arrays[name])
    index.weights = {p: arrays[f"weights.{p}"] for p in PROFILES}
    index.extra_arrays = {k[len("extra.") :]: a for k, a in arrays.items() if k.startswith("extra.")}
    index.loaded_from_store = True


def _load_stored(state, base, graph_key: str) -> RouteIndex | None:
    """Make the store's index of `graph_key` this worker's (unless requests moved it further)."""
    if not index_store.exists(base, graph_key):
        return None
    started = time.perf_counter()
    index = run_off_loop(from_store, base, graph_key)
    if index is None:
        return None
    current_index = state["index"]
    if current_index is not None and queries.key_order(current_index.graph_key) > queries.key_order(graph_key):
        return current_index
    state["index"] = index
    state["last"] = {"how": "loaded"}
    _log_built(index, "loaded", 0.0, started, None)
    _trim_heap()
    return index


def _build_here(state) -> RouteIndex | None:
    """Read the network and build this worker's index of its version (what the log line says)."""
    started = time.perf_counter()
    arrays, has_changes = get_db().read(
        lambda cur: (queries.load(cur), queries.has_changes(cur)),
        timeout_ms=int(get_settings().route_index_load_timeout_s * 1000),
    )
    state["has_changes"] = has_changes
    loaded_ms = (time.perf_counter() - started) * 1000
    previous = state["index"]
    previous_key = previous.graph_key if previous is not None else None
    if previous is not None and previous.graph_key == arrays.graph_key and not previous.added:
        return previous
    how = "built"
    try:
        if previous is not None:
            _check(arrays)
            found = run_off_loop(changed_arcs, previous, arrays)
            if found is not None and sum(len(a) for a in found[0].values()) <= IN_PLACE_ARCS:
                if state["index"] is not previous or previous.graph_key != previous_key:
                    return state["index"]  # requests moved it on meanwhile (see current())
                update_in_place(previous, arrays, *found)
                state["last"] = {"how": "updated", "arcs": sum(len(a) for a in found[0].values())}
                _log_built(previous, "updated", loaded_ms, started, state["last"]["arcs"])
                return previous
            how = "recustomized" if found is not None else "built"
        index = run_off_loop(build, arrays, previous)
    except NotIndexable as exc:
        state["failed"] = {"key": arrays.graph_key, "why": str(exc)}
        state["index"] = None
        log.warning("route index not built for graph %s: %s (routes use windows)", arrays.graph_key, exc)
        return None
    current_index = state["index"]
    if current_index is not None and (current_index is not previous or current_index.graph_key != previous_key):
        # Requests moved the index on while this one was built: keep the newer of the two.
        if queries.key_order(current_index.graph_key) > queries.key_order(index.graph_key):
            return current_index
    state["index"] = index
    state["last"] = {"how": how}
    _log_built(index, how, loaded_ms, started, None)
    return index


def _log_built(index: RouteIndex, how: str, loaded_ms: float, started: float, arcs) -> None:
    log.info(
        "route index ready",
        extra={
            "graph_key": index.graph_key,
            "how": how,
            "vertices": len(index.vertex_ids),
            "edges": index.edge_count,
            "load_ms": round(loaded_ms, 1),
            "topology_ms": round(index.build_ms, 1) if how in ("built", "loaded") else 0.0,
            "customize_ms": round(index.customize_ms, 1) if how != "updated" else 0.0,
            "arcs_updated": arcs,
            **(index.memory if how == "loaded" else {}),
            "total_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
