"""Routing lines (CAD network lines, a GDAL file's lines) -> a noded network.

CAD lines meet at their ends, a little apart, and sometimes in the middle of another line. On
each level, line ends within `tolerance_m` of each other become one vertex, and a line end within
`tolerance_m` of another line's interior splits that line there (a T). Lines that cross without
an end near the other are not joined (a stair passing over a corridor).

Floors drawn one file at a time: a stairs (escalator, elevator, ramp) line of a one-level file
joins its level at its end nearer the level's other lines; its other end is the next floor's,
left open here (its own vertex, on the file's level) and joined to the nearest vertex of another
level later, in SQL, once that floor is in the database (`queries.buildings.join_open_ends`). A
line whose `levels` are two different levels joins both (its first end on the first level).
"""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import substring

from indoor.importers.plan import VERTICAL_SPACES, Line
from indoor.queries.network import Network

# What a level change costs on top of the horizontal distance (never below it: DATA.md).
EXTRA_M = {"stairs": 5.0, "escalator": 2.0, "elevator": 10.0}
METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320.0


class _Frame:
    """A local flat frame in metres around the data (tolerances are metres; a building is small)."""

    def __init__(self, lon0: float, lat0: float):
        self.lon0, self.lat0 = lon0, lat0
        self.kx = METRES_PER_DEGREE_LON_AT_EQUATOR * math.cos(math.radians(lat0))
        self.ky = METRES_PER_DEGREE_LAT

    def to_metres(self, geometry):
        return shapely.transform(
            geometry, lambda c: np.column_stack(((c[:, 0] - self.lon0) * self.kx, (c[:, 1] - self.lat0) * self.ky))
        )

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        return self.lon0 + x / self.kx, self.lat0 + y / self.ky


class _Clusters:
    """Union-find over points: points within the tolerance become one vertex."""

    def __init__(self):
        self.parent: list[int] = []
        self.points: list[tuple[float, float]] = []

    def add(self, x: float, y: float) -> int:
        self.parent.append(len(self.parent))
        self.points.append((x, y))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union_within(self, members: list[int], tolerance: float) -> None:
        if len(members) < 2:
            return
        points = shapely.points([self.points[m] for m in members])
        left, right = shapely.STRtree(points).query(points, predicate="dwithin", distance=tolerance)
        for a, b in zip(left, right, strict=True):
            ra, rb = self.find(members[a]), self.find(members[b])
            if ra != rb:
                self.parent[max(ra, rb)] = min(ra, rb)  # the first point drawn stays the vertex


def network_from_lines(lines: list[Line], first_vertex: int, first_edge: int, tolerance_m: float) -> Network:
    lines = [line for line in lines if line.routable and len(line.geometry.coords) >= 2]
    net = Network()
    if not lines:
        return net
    bounds = shapely.total_bounds([line.geometry for line in lines])
    frame = _Frame((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    metric = [frame.to_metres(line.geometry) for line in lines]
    clusters = _Clusters()
    # Per line: the cluster of its first and last point; per level: joining ends and open ends.
    ends: list[list[int | None]] = [[None, None] for _ in lines]
    joining: dict[Decimal, list[int]] = defaultdict(list)
    open_ends: dict[Decimal, list[int]] = defaultdict(list)
    flat_by_level: dict[Decimal, list[int]] = defaultdict(list)
    end_level: dict[int, Decimal] = {}

    for i, line in enumerate(lines):
        first_level, last_level = line.levels[0], line.levels[-1]
        if first_level == last_level and line.kind not in VERTICAL_SPACES:
            flat_by_level[first_level].append(i)
        for k, level in ((0, first_level), (1, last_level)):
            x, y = metric[i].coords[-k]
            ends[i][k] = clusters.add(x, y)
            end_level[ends[i][k]] = level

    for i, line in enumerate(lines):
        first_level, last_level = line.levels[0], line.levels[-1]
        if line.kind in VERTICAL_SPACES and first_level == last_level:
            joined = _nearer_end(metric[i], [metric[j] for j in flat_by_level[first_level]], tolerance_m)
            for k in (0, 1):
                (joining if k == joined else open_ends)[first_level].append(ends[i][k])
        else:
            joining[first_level].append(ends[i][0])
            joining[last_level].append(ends[i][1])

    for members in joining.values():
        clusters.union_within(members, tolerance_m)
    for members in open_ends.values():
        clusters.union_within(members, tolerance_m)
    splits = _t_junctions(metric, flat_by_level, joining, clusters, end_level, tolerance_m)

    vertex_ids: dict[int, int] = {}

    def vertex(cluster: int) -> int:
        root = clusters.find(cluster)
        if root not in vertex_ids:
            vertex_ids[root] = first_vertex + len(vertex_ids)
            lon, lat = frame.to_lonlat(*clusters.points[root])
            net.vertices.append((vertex_ids[root], end_level[root], lon, lat))
        return vertex_ids[root]

    for i, line in enumerate(lines):
        stops = [(0.0, ends[i][0]), *sorted(splits[i]), (metric[i].length, ends[i][1])]
        for (start, a), (stop, b) in zip(stops, stops[1:], strict=False):
            source, target = vertex(a), vertex(b)
            if source == target:
                continue  # a piece shorter than the tolerance, or a closed loop
            piece = substring(metric[i], start, stop)
            coords = [clusters.points[clusters.find(a)], *list(piece.coords)[1:-1], clusters.points[clusters.find(b)]]
            wkt = "LINESTRING(" + ",".join("{!r} {!r}".format(*frame.to_lonlat(x, y)) for x, y in coords) + ")"
            extra = EXTRA_M.get(line.kind, 0.0)
            forward = -1.0 if line.oneway == -1 else extra
            backward = -1.0 if line.oneway == 1 else extra
            net.edges.append((first_edge + len(net.edges), source, target, line.kind, forward, backward, wkt))
    return net


def _nearer_end(line: LineString, others: list[LineString], tolerance: float) -> int | None:
    """Which end (0 first, 1 last) of a one-level stairs line joins its level: the one nearer the
    level's other lines, if within the tolerance."""
    if not others:
        return None
    tree = shapely.STRtree(others)
    distances = []
    for k in (0, -1):
        point = Point(line.coords[k])
        nearest = tree.nearest(point)
        distances.append(point.distance(others[nearest]))
    k = 0 if distances[0] <= distances[1] else 1
    return k if distances[k] <= tolerance else None


def _t_junctions(metric, flat_by_level, joining, clusters, end_level, tolerance) -> dict[int, list]:
    """Line ends near another line's interior: -> {line index: [(distance along it, cluster)]}."""
    splits: dict[int, list] = defaultdict(list)
    for level, members in joining.items():
        flat = flat_by_level.get(level, [])
        if not flat:
            continue
        tree = shapely.STRtree([metric[j] for j in flat])
        points = shapely.points([clusters.points[m] for m in members])
        point_index, line_index = tree.query(points, predicate="dwithin", distance=tolerance)
        seen = set()
        for p, l in zip(point_index, line_index, strict=True):
            j = flat[l]
            root = clusters.find(members[p])
            if (j, root) in seen:
                continue
            seen.add((j, root))
            line = metric[j]
            along = line.project(points[p])
            if along <= tolerance or along >= line.length - tolerance:
                continue  # at the line's own end: joined by clustering already
            splits[j].append((along, root))
    return splits
