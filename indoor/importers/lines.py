"""Routing lines (CAD network lines, a GDAL file's lines) -> noded lines for `derive_network`.

CAD lines meet at their ends, a little apart, and sometimes in the middle of another line. On
each level, line ends within `tolerance_m` of each other become one vertex, and a line end within
`tolerance_m` of another line's interior splits that line there (a T). Lines that cross without
an end near the other are not joined (a stair passing over a corridor).

Floors drawn one file at a time: a stairs (escalator, elevator, ramp) line of a one-level file
joins its level at its end nearer the level's other lines; its other end is the next floor's,
left open here (its own point, on the file's level) and joined to the nearest vertex of another
level later, in SQL, once that floor is in the database (`queries.buildings.join_open_ends`). A
line whose `levels` are two different levels joins both (its first end on the first level).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

import numpy as np
import shapely
from shapely.geometry import LineString, Point
from shapely.ops import substring

from indoor.importers.plan import VERTICAL_SPACES, Line

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


def node_lines(lines: list[Line], tolerance_m: float) -> list[Line]:
    """The lines with their meeting ends moved onto one point and split at Ts, so that
    `derive_network` (which joins lines at shared coordinates) sees one noded network."""
    lines = [line for line in lines if line.routable and len(line.geometry.coords) >= 2]
    if not lines:
        return lines
    bounds = shapely.total_bounds([line.geometry for line in lines])
    frame = _Frame((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    metric = [frame.to_metres(line.geometry) for line in lines]
    clusters = _Clusters()
    # Per line: the cluster of its first and last point; per level: joining ends and open ends.
    ends: list[list[int]] = []
    joining: dict[Decimal, list[int]] = defaultdict(list)
    open_ends: dict[Decimal, list[int]] = defaultdict(list)
    flat_by_level: dict[Decimal, list[int]] = defaultdict(list)
    for i, line in enumerate(lines):
        if line.levels[0] == line.levels[-1] and line.kind not in VERTICAL_SPACES:
            flat_by_level[line.levels[0]].append(i)
        ends.append([clusters.add(*metric[i].coords[0]), clusters.add(*metric[i].coords[-1])])

    for i, line in enumerate(lines):
        first_level, last_level = line.levels[0], line.levels[-1]
        if line.kind in VERTICAL_SPACES and first_level == last_level:
            joined = _nearer_end(metric[i], [metric[j] for j in flat_by_level[first_level]], tolerance_m)
            for k in (0, 1):
                (joining if k == joined else open_ends)[first_level].append(ends[i][k])
        else:
            joining[first_level].append(ends[i][0])
            joining[last_level].append(ends[i][1])
    for members in [*joining.values(), *open_ends.values()]:
        clusters.union_within(members, tolerance_m)
    splits = _t_junctions(metric, flat_by_level, joining, clusters, tolerance_m)

    def lonlat(cluster: int) -> tuple[float, float]:
        return frame.to_lonlat(*clusters.points[clusters.find(cluster)])

    noded = []
    for i, line in enumerate(lines):
        stops = [(0.0, ends[i][0]), *sorted(splits[i]), (metric[i].length, ends[i][1])]
        for (start, a), (stop, b) in zip(stops, stops[1:], strict=False):
            if clusters.find(a) == clusters.find(b) and stop - start <= tolerance_m:
                continue  # a piece no longer than the tolerance: its ends are one vertex
            inner = [frame.to_lonlat(x, y) for x, y in list(substring(metric[i], start, stop).coords)[1:-1]]
            piece = LineString([lonlat(a), *inner, lonlat(b)])
            noded.append(replace(line, geometry=piece))
    return noded


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


def _t_junctions(metric, flat_by_level, joining, clusters, tolerance) -> dict[int, list]:
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
        for p, k in zip(point_index, line_index, strict=True):
            j = flat[k]
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
