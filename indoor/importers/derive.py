"""Derive a walkable network from an `IndoorPlan`: what every importer shares.

The plan's geometry is drawn into a local metric projection centred on the plan (an
equirectangular plane: at building scale its distortion is far below the clearances used), and
the graph is built there; vertices go back to lon/lat. Costs are not computed here:
`queries.network` makes every cost the geodesic length of the edge plus a non-negative extra, so
the DATA.md invariant (cost >= geodesic length between the vertices) holds by construction.

- Inside each space on each of its levels: a visibility graph with clearance. The space is
  shrunk by `CLEARANCES_M` (people keep off walls); its nodes are the points where people enter
  (doors, the joins with neighbouring walkable spaces, routing-line vertices, elevator nodes),
  the reflex corners of the shrunk space (where shortest paths bend) and, in a room, its label
  point. Two nodes are joined wherever the shrunk space covers the segment between them: every
  such pair in a small space, in a big hall only each node's nearest few and its nearest in each
  of `SECTORS` directions (see `_visibility_pairs`), so big halls stay small graphs.
- A point of entry on the outline joins the space by a short edge to the nearest point of the
  shrunk space; two spaces meet where they share that point.
- Rooms are entered only through their doors. Corridors, areas (and vertical spaces without
  doors) that share an edge or overlap are walkable across it: join points every
  `JOIN_SPACING_M` along the shared edge. Rooms drawn on top of a hall are cut out of it.
- A room without a door is left as an island (its label snaps to it, so a route to it fails
  honestly instead of passing through a wall), except on a level whose source maps routing
  lines: there its label (also that of a room whose doors all lead to no mapped space, e.g. to
  the street) joins the nearest line vertex within `ROOM_LINK_M`, as such sources
  intend (a station's shops are open to the concourse, their shopfronts are not mapped as doors),
  and a door with a space on one side only joins the nearest line vertex within `DOOR_LINK_M`.
- `routable=False` (access=private|no): the space is an island, the opening or line is left out.
  `wheelchair=False`: the edges that enter the space or cross the opening are of kind `stairs`,
  which the accessible profile never uses (vertical ones too: an elevator nobody in a wheelchair
  can use is, for routing, a stair).
- Levels join through routing lines that climb (stairs, escalators), connectors (elevator nodes
  with a level list) and vertical spaces (stairs, escalator, elevator, ramp rooms with a level
  list or repeat_on): the space's graph on each level joins the next level it serves at its
  centre. Vertical spaces drawn once per level join the overlapping one of the same kind on the
  next level.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import nearest_points

from indoor.importers.plan import VERTICAL_SPACES, WALKABLE_SPACES, IndoorPlan, Space
from indoor.queries.network import Network

# Extras, as metres of walking added to the geodesic length (never negative: DATA.md).
STAIRS_EXTRA_M = 5.0  # climbing costs more than walking the same horizontal distance
ESCALATOR_EXTRA_M = 2.0
ELEVATOR_COST_M = 10.0  # the wait
RAMP_EXTRA_M = 1.0
VERTICAL_EXTRA_M = {"stairs": STAIRS_EXTRA_M, "escalator": ESCALATOR_EXTRA_M, "elevator": ELEVATOR_COST_M}

CLEARANCES_M = (0.4, 0.15)  # tried in turn: the first that keeps the space in one piece
VISIBILITY_TOLERANCE_M = 0.02  # numerical slack when a segment runs along the shrunk outline
FULL_VISIBILITY_NODES = 60  # up to this many nodes in a space: every visible pair is an edge
LINKS_PER_NODE = 6  # more: the nearest few it sees...
SECTORS = 16  # ...and the nearest it sees in each of these directions
CANDIDATES_PER_NODE = 96
DOOR_ON_ROOM_M = 0.3  # a door belongs to a room when this close to its outline
DOOR_ON_WALKABLE_M = 1.0  # ...to a corridor or area (across a wall's thickness)
LINE_IN_SPACE_M = 0.5  # a routing-line vertex this close to a walkable space joins it
JOIN_SPACING_M = 4.0  # between join points along an edge two walkable spaces share
MIN_SHARED_EDGE_M = 0.6  # a shared edge shorter than this is no passage
CONNECTOR_REACH_M = 5.0  # an elevator node outside every space joins the nearest vertex this close
# On a level with routing lines: a room without a door joins the nearest line vertex this close
# (as a snapped room always did), a door on one space only the nearest within DOOR_LINK_M.
ROOM_LINK_M = 30.0
DOOR_LINK_M = 15.0
STACKED_OVERLAP = 0.3  # share of the smaller outline two stacked vertical spaces must overlap
REFLEX_MIN_TURN = math.sin(math.radians(10))
VERTEX_GRID_M = 0.01  # vertices at the same level within a centimetre are one

EARTH_RADIUS_M = 6_371_008.8


@dataclass
class LocalProjection:
    """Equirectangular metres around (lon0, lat0)."""

    lon0: float
    lat0: float

    def __post_init__(self):
        self.m_per_deg_lat = math.radians(1) * EARTH_RADIUS_M
        self.m_per_deg_lon = self.m_per_deg_lat * math.cos(math.radians(self.lat0))
        self._scale = np.array([self.m_per_deg_lon, self.m_per_deg_lat])
        self._origin = np.array([self.lon0, self.lat0])

    @classmethod
    def around(cls, geometries) -> LocalProjection:
        bounds = [g.bounds for g in geometries if g is not None and not g.is_empty]
        if not bounds:
            return cls(0.0, 0.0)
        xs = [b[0] for b in bounds] + [b[2] for b in bounds]
        ys = [b[1] for b in bounds] + [b[3] for b in bounds]
        return cls((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)

    def forward(self, geometry):
        return shapely.transform(geometry, lambda c: (c - self._origin) * self._scale)

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        return self.lon0 + x / self.m_per_deg_lon, self.lat0 + y / self.m_per_deg_lat


@dataclass
class _Anchor:
    """A point where people enter a space: it joins the space by a short edge of `kind`."""

    x: float
    y: float
    vertex: int
    kind: str = "corridor"
    leads_on: bool = True  # False: a door with no mapped space on its other side


@dataclass
class _SpacePart:
    """One polygon of a space on one level, in metres."""

    space: Space
    level: Decimal
    polygon: Polygon
    anchors: list[_Anchor] = field(default_factory=list)
    labels: list[tuple[float, float]] = field(default_factory=list)

    @property
    def walkable(self) -> bool:
        """Joined to its neighbours across shared edges (a room only through doors)."""
        return self.space.kind in WALKABLE_SPACES


class _Graph:
    """Vertices keyed by (level, position on a centimetre grid), and edges in network rows."""

    def __init__(self, projection: LocalProjection, first_vertex: int, first_edge: int):
        self.projection = projection
        self.first_edge = first_edge
        self.next_vertex = first_vertex
        self.ids: dict[tuple, int] = {}
        self.vertices: list[tuple] = []
        self.position: dict[int, tuple[float, float]] = {}
        self.level: dict[int, Decimal] = {}
        self.lonlat: dict[int, tuple[float, float]] = {}
        self.edges: list[tuple] = []
        self.degree: dict[int, int] = defaultdict(int)
        self._seen: set[tuple] = set()

    def vertex(self, level: Decimal, x: float, y: float, lonlat: tuple[float, float] | None = None) -> int:
        key = (level, round(x / VERTEX_GRID_M), round(y / VERTEX_GRID_M))
        found = self.ids.get(key)
        if found is not None:
            return found
        vertex_id = self.next_vertex
        self.next_vertex += 1
        self.ids[key] = vertex_id
        lon, lat = (float(c) for c in (lonlat or self.projection.lonlat(x, y)))
        x, y = float(x), float(y)
        self.vertices.append((vertex_id, level, lon, lat))
        self.position[vertex_id] = (x, y)
        self.level[vertex_id] = level
        self.lonlat[vertex_id] = (lon, lat)
        return vertex_id

    def edge(self, a: int, b: int, kind: str, extra_fwd: float, extra_rev: float, wkt: str | None = None) -> None:
        if a == b and self.level[a] == self.level[b]:
            return
        key = (min(a, b), max(a, b), kind, wkt if a != b else None)
        if wkt is None and extra_fwd == extra_rev and key in self._seen:
            return  # the same straight edge from two overlapping spaces
        self._seen.add(key)
        self.edges.append((self.first_edge + len(self.edges), a, b, kind, extra_fwd, extra_rev, wkt))
        self.degree[a] += 1
        self.degree[b] += 1


def derive_network(plan: IndoorPlan, first_vertex: int, first_edge: int, building: str | None) -> Network:
    """The plan as network rows: a derived walkable graph merged with the plan's routing lines,
    its rooms (with categories), its drawn floor plan and its level display names."""
    projection = LocalProjection.around(
        [s.geometry for s in plan.spaces] + [line.geometry for line in plan.lines] + [r.geometry for r in plan.rooms]
    )
    graph = _Graph(projection, first_vertex, first_edge)
    _add_lines(plan, graph, projection)
    line_vertices = _LineVertices(graph)
    parts = _space_parts(plan, projection)
    _add_line_anchors(parts, graph)
    _add_walkable_joins(parts, graph)
    dead_end_doors = _add_doors(plan, parts, graph, projection)
    _add_labels(plan, parts, projection)
    connector_vertices = _add_connector_anchors(plan, parts, graph, projection)
    vertical_nodes: list[tuple[_SpacePart, int]] = []  # each vertical space's centre on each level
    for part in parts:
        _build_space(part, graph, line_vertices, vertical_nodes)
    for vertex_id in dead_end_doors:
        line_vertices.link(vertex_id, DOOR_LINK_M)
    _add_vertical_spaces(graph, vertical_nodes)
    _add_connectors(plan, graph, connector_vertices)

    network = Network()
    network.vertices = [v for v in graph.vertices if graph.degree.get(v[0])]
    network.edges = graph.edges
    network.rooms = [
        (room.name, room.level, building, room.geometry.x, room.geometry.y, room.category)
        for room in plan.rooms
        if room.name and not room.geometry.is_empty
    ]
    network.plan = [
        (feature.layer, feature.name, feature.level, building, _wkt(shapely.orient_polygons(feature.geometry)))
        for feature in plan.features
        if feature.geometry is not None and not feature.geometry.is_empty
    ]
    network.level_names = [(building or "", level, name) for level, name in sorted(plan.level_names.items())]
    return network


def _wkt(geometry) -> str:
    return shapely.to_wkt(geometry, rounding_precision=-1)


# -- routing lines ------------------------------------------------------------------------


def _add_lines(plan: IndoorPlan, graph: _Graph, projection: LocalProjection) -> None:
    """The plan's routing lines as edges, split wherever lines meet.

    A flat line is split at every point another line (or a climbing line's end, or a connector)
    shares on its level; a climbing line is one edge from its first point (first level) to its
    last point (last level).
    """
    uses: dict[tuple, int] = defaultdict(int)
    flat, climbing = [], []
    for line in plan.lines:
        if not line.routable or line.geometry.is_empty or len(line.geometry.coords) < 2 or not line.levels:
            continue
        coords = list(line.geometry.coords)
        if len(set(line.levels)) == 1:
            level = line.levels[0]
            flat.append((line, level, coords))
            for i, point in enumerate(coords):
                uses[level, point[:2]] += 2 if i in (0, len(coords) - 1) else 1
        else:
            climbing.append((line, line.levels[0], line.levels[-1], coords))
            uses[line.levels[0], coords[0][:2]] += 2
            uses[line.levels[-1], coords[-1][:2]] += 2
    for connector in plan.connectors:
        for level in connector.levels:
            uses[level, (connector.geometry.x, connector.geometry.y)] += 2

    def vertex(level, point):
        x, y = projection.forward(Point(point[:2])).coords[0]
        return graph.vertex(level, x, y, lonlat=point[:2])

    def wkt(coords):
        return "LINESTRING(" + ",".join(f"{c[0]!r} {c[1]!r}" for c in coords) + ")"

    for line, level, coords in flat:
        kind = "stairs" if line.wheelchair is False else line.kind
        extra = _line_extra(kind)
        forward, backward = _directed(extra, line.oneway)
        start = 0
        for i in range(1, len(coords)):
            if i == len(coords) - 1 or uses[level, coords[i][:2]] > 1:
                a, b = vertex(level, coords[start]), vertex(level, coords[i])
                if a != b or i - start > 1:
                    graph.edge(a, b, kind, forward, backward, wkt(coords[start : i + 1]))
                start = i
    for line, first_level, last_level, coords in climbing:
        kind = _vertical_kind(line.kind, line.wheelchair)
        extra = _line_extra(kind)
        forward, backward = _directed(extra, line.oneway)
        graph.edge(vertex(first_level, coords[0]), vertex(last_level, coords[-1]), kind, forward, backward, wkt(coords))


class _LineVertices:
    """The routing lines' vertices per level (taken right after the lines are added): where a
    room without a door, or a door that leads nowhere mapped, joins on a level that has lines."""

    def __init__(self, graph: _Graph):
        self.graph = graph
        grouped = defaultdict(list)
        for vertex_id, level in graph.level.items():
            if graph.degree.get(vertex_id):
                grouped[level].append(vertex_id)
        self.by_level = {level: (ids, np.array([graph.position[v] for v in ids])) for level, ids in grouped.items()}

    def __contains__(self, level) -> bool:
        return level in self.by_level

    def link(self, vertex_id: int, reach_m: float) -> None:
        found = self.by_level.get(self.graph.level[vertex_id])
        if not found:
            return
        ids, points = found
        distances = np.hypot(*(points - np.array(self.graph.position[vertex_id])).T)
        nearest = int(np.argmin(distances))
        if distances[nearest] <= reach_m:
            self.graph.edge(vertex_id, ids[nearest], "corridor", 0.0, 0.0)


def _line_extra(kind: str) -> float:
    return {"stairs": STAIRS_EXTRA_M, "escalator": ESCALATOR_EXTRA_M, "ramp": RAMP_EXTRA_M}.get(kind, 0.0)


def _directed(extra: float, oneway: int) -> tuple[float, float]:
    """(forward, backward) extras; -1 closes a one-way edge's other direction."""
    return (extra, -1.0) if oneway == 1 else ((-1.0, extra) if oneway == -1 else (extra, extra))


def _vertical_kind(kind: str, wheelchair: bool | None) -> str:
    """The edge kind of a climb: one the accessible profile avoids when nobody in a wheelchair can use it."""
    kind = kind if kind in VERTICAL_EXTRA_M or kind == "ramp" else "stairs"
    return "stairs" if wheelchair is False and kind not in ("stairs", "escalator") else kind


# -- spaces and what enters them ----------------------------------------------------------


def _space_parts(plan: IndoorPlan, projection: LocalProjection) -> list[_SpacePart]:
    parts = []
    for space in plan.spaces:
        if space.geometry is None or space.geometry.is_empty:
            continue
        geometry = projection.forward(space.geometry)
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        polygons = [p for p in _polygons(geometry) if p.area > 0.05]
        for level in dict.fromkeys(space.levels):
            parts.extend(_SpacePart(space, level, polygon) for polygon in polygons)
    return _cut_out_rooms(parts)


def _cut_out_rooms(parts: list[_SpacePart]) -> list[_SpacePart]:
    """Rooms drawn on top of a hall or corridor (no hole left for them) are not walked through:
    the walkable part is the space minus the rooms over it, a piece per part that is left."""
    rooms = [p for p in parts if p.space.kind == "room"]
    if not rooms:
        return parts
    tree = shapely.STRtree([p.polygon for p in rooms])
    result = []
    for part in parts:
        if not part.walkable:
            result.append(part)
            continue
        over = [
            rooms[i].polygon
            for i in tree.query(part.polygon, predicate="intersects")
            if rooms[i].level == part.level and part.polygon.intersection(rooms[i].polygon).area > 0.5
        ]
        if not over:
            result.append(part)
            continue
        left = part.polygon.difference(shapely.union_all(over))
        result.extend(_SpacePart(part.space, part.level, p) for p in _polygons(left) if p.area > 0.05)
    return result


def _polygons(geometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [geometry]
    return [p for part in getattr(geometry, "geoms", []) for p in _polygons(part)]


def _parts_by_level(parts: list[_SpacePart]) -> dict[Decimal, tuple[list[_SpacePart], shapely.STRtree]]:
    grouped = defaultdict(list)
    for part in parts:
        grouped[part.level].append(part)
    return {level: (group, shapely.STRtree([p.polygon for p in group])) for level, group in grouped.items()}


def _joins_others(part: _SpacePart) -> bool:
    """Entered from neighbouring spaces and lines without a door: corridors, areas, vertical spaces."""
    return part.space.routable and (part.walkable or part.space.kind in VERTICAL_SPACES)


def _add_line_anchors(parts, graph: _Graph) -> None:
    """Routing-line vertices inside a corridor, area or vertical space join its graph."""
    by_level = _parts_by_level(parts)
    for vertex_id, level in list(graph.level.items()):
        if level not in by_level or graph.degree.get(vertex_id, 0) == 0:
            continue
        group, tree = by_level[level]
        x, y = graph.position[vertex_id]
        for index in tree.query(Point(x, y), predicate="dwithin", distance=LINE_IN_SPACE_M):
            part = group[index]
            if _joins_others(part):
                part.anchors.append(_Anchor(x, y, vertex_id))


def _add_walkable_joins(parts, graph: _Graph) -> None:
    """Corridors and areas that share an edge or overlap are walkable across it."""
    for _level, (group, tree) in _parts_by_level(parts).items():
        for i, part in enumerate(group):
            if not _joins_others(part):
                continue
            for j in tree.query(part.polygon, predicate="dwithin", distance=0.05):
                other = group[j]
                if j <= i or not _joins_others(other) or other.space is part.space:
                    continue
                # A vertical space joins its neighbours only where it has no door: handled by
                # letting doors win (a door on the shared edge makes this join redundant).
                for x, y in _join_points(part.polygon, other.polygon):
                    vertex_id = graph.vertex(part.level, x, y)
                    part.anchors.append(_Anchor(x, y, vertex_id))
                    other.anchors.append(_Anchor(x, y, vertex_id))


def _join_points(a: Polygon, b: Polygon) -> list[tuple[float, float]]:
    overlap = a.intersection(b)
    if overlap.area > 1.0:
        inner = overlap.buffer(-CLEARANCES_M[0])
        point = (inner if not inner.is_empty else overlap).representative_point()
        return [(point.x, point.y)]
    shared = a.buffer(0.05).intersection(b.buffer(0.05))
    if shared.is_empty:
        return []
    # The shared edge: the part of a's outline inside the thin sliver both outlines make.
    edge = a.exterior.intersection(shared)
    for interior in a.interiors:
        edge = edge.union(interior.intersection(shared))
    points = []
    merged = shapely.line_merge(edge) if edge.geom_type == "MultiLineString" else edge
    for piece in getattr(merged, "geoms", [merged]):
        if not isinstance(piece, LineString) or piece.length < MIN_SHARED_EDGE_M:
            continue
        count = max(1, math.ceil(piece.length / JOIN_SPACING_M))
        for k in range(count):
            point = piece.interpolate((k + 0.5) / count, normalized=True)
            points.append((point.x, point.y))
    return points


def _add_doors(plan: IndoorPlan, parts, graph: _Graph, projection: LocalProjection) -> list[int]:
    """Doors join the spaces they are on; -> the vertices of doors on one space only."""
    by_level = _parts_by_level(parts)
    dead_ends = []
    for opening in plan.openings:
        if not opening.routable or opening.geometry is None or opening.geometry.is_empty:
            continue
        geometry = projection.forward(opening.geometry)
        door = geometry if isinstance(geometry, Point) else geometry.interpolate(0.5, normalized=True)
        kind = "stairs" if opening.wheelchair is False else "door"
        for level in dict.fromkeys(opening.levels):
            if level not in by_level:
                continue
            group, tree = by_level[level]
            vertex_id, joined = None, []
            for index in tree.query(geometry, predicate="dwithin", distance=DOOR_ON_WALKABLE_M):
                part = group[index]
                # On a room's outline; in a corridor or area, or across a wall from it.
                near = part.polygon.distance(geometry) if part.walkable else part.polygon.boundary.distance(geometry)
                reach = DOOR_ON_WALKABLE_M if part.walkable else DOOR_ON_ROOM_M
                if not part.space.routable or near > reach:
                    continue
                if vertex_id is None:
                    vertex_id = graph.vertex(level, door.x, door.y)
                joined.append(_Anchor(door.x, door.y, vertex_id, kind))
                part.anchors.append(joined[-1])
            if len(joined) == 1:
                joined[0].leads_on = False
                dead_ends.append(vertex_id)
    return dead_ends


def _add_labels(plan: IndoorPlan, parts, projection: LocalProjection) -> None:
    """Each room's label point becomes a node of the room it stands in."""
    by_level = _parts_by_level(parts)
    for room in plan.rooms:
        if room.level not in by_level or room.geometry.is_empty:
            continue
        group, tree = by_level[room.level]
        point = projection.forward(room.geometry)
        for index in tree.query(point, predicate="intersects"):
            if group[index].space.kind not in WALKABLE_SPACES:
                group[index].labels.append((point.x, point.y))
                break


def _add_connector_anchors(plan: IndoorPlan, parts, graph: _Graph, projection: LocalProjection) -> dict:
    """Elevator nodes inside a space join its graph on each level they serve."""
    by_level = _parts_by_level(parts)
    vertices = {}
    for index, connector in enumerate(plan.connectors):
        if not connector.routable:
            continue
        point = projection.forward(connector.geometry)
        for level in dict.fromkeys(connector.levels):
            vertex_id = graph.vertex(level, point.x, point.y, lonlat=(connector.geometry.x, connector.geometry.y))
            vertices[index, level] = vertex_id
            if level not in by_level:
                continue
            group, tree = by_level[level]
            for j in tree.query(point, predicate="dwithin", distance=LINE_IN_SPACE_M):
                if group[j].space.routable:
                    group[j].anchors.append(_Anchor(point.x, point.y, vertex_id))
    return vertices


# -- the graph inside one space -----------------------------------------------------------


def _shrunk(polygon: Polygon) -> Polygon | MultiPolygon:
    for clearance in CLEARANCES_M:
        inner = polygon.buffer(-clearance, join_style="mitre", mitre_limit=3.0)
        if not inner.is_empty and len(getattr(inner, "geoms", [inner])) == 1:
            return inner
    return polygon


def _reflex_corners(area) -> list[tuple[float, float]]:
    corners = []
    for polygon in getattr(area, "geoms", [area]):
        polygon = shapely.orient_polygons(polygon)  # exterior counter-clockwise, holes clockwise
        for ring in [polygon.exterior, *polygon.interiors]:
            coords = np.asarray(ring.coords)[:-1, :2]
            if len(coords) < 3:
                continue
            before = coords - np.roll(coords, 1, axis=0)
            after = np.roll(coords, -1, axis=0) - coords
            cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
            norms = np.hypot(*before.T) * np.hypot(*after.T)
            reflex = cross < -REFLEX_MIN_TURN * np.where(norms > 0, norms, np.inf)
            corners.extend(map(tuple, coords[reflex]))
    return corners


def _build_space(part: _SpacePart, graph: _Graph, line_vertices: _LineVertices, vertical_nodes: list) -> None:
    space = part.space
    vertical = space.kind in VERTICAL_SPACES
    entered = bool(part.anchors)
    leads_on = any(anchor.leads_on for anchor in part.anchors)
    if not leads_on and space.kind == "room" and space.routable and part.level in line_vertices:
        for x, y in part.labels:  # reached from the nearest routing line (module docstring)
            line_vertices.link(graph.vertex(part.level, x, y), ROOM_LINK_M)
        if not entered:
            return
    if not entered and not part.labels and not vertical:
        return  # a space nobody enters and nobody routes to
    area = _shrunk(part.polygon)
    covering = area.buffer(VISIBILITY_TOLERANCE_M, join_style="mitre")
    shapely.prepare(covering)

    nodes: list[tuple[float, float]] = []
    node_vertex: dict[int, int] = {}

    def add_node(x, y, vertex_id=None) -> int:
        nodes.append((x, y))
        index = len(nodes) - 1
        node_vertex[index] = vertex_id if vertex_id is not None else graph.vertex(part.level, x, y)
        return index

    link_kind = "stairs" if space.wheelchair is False else None
    for anchor in part.anchors:
        point = Point(anchor.x, anchor.y)
        if covering.covers(point):
            add_node(anchor.x, anchor.y, anchor.vertex)
            continue
        inner = nearest_points(area, point)[0]
        index = add_node(inner.x, inner.y)
        graph.edge(anchor.vertex, node_vertex[index], link_kind or anchor.kind, 0.0, 0.0)
    for x, y in part.labels:
        point = Point(x, y)
        if not covering.covers(point):
            point = nearest_points(area, point)[0]
        add_node(point.x, point.y)
    if vertical:
        centre = area.centroid if covering.covers(area.centroid) else area.representative_point()
        vertical_nodes.append((part, node_vertex[add_node(centre.x, centre.y)]))
    for x, y in _reflex_corners(area):
        add_node(x, y)
    if len(set(node_vertex.values())) < 2:
        # A room nobody enters: an island of its own corners, so its label snaps inside it.
        for polygon in getattr(area, "geoms", [area]):
            for x, y in list(polygon.exterior.coords)[:-1][:8]:
                add_node(x, y)
    for i, j in _visibility_pairs(np.asarray(nodes), covering):
        a, b = node_vertex[i], node_vertex[j]
        if a != b:
            graph.edge(a, b, "corridor", 0.0, 0.0)


def _visibility_pairs(points: np.ndarray, covering) -> set[tuple[int, int]]:
    """Pairs of nodes the shrunk space sees between.

    Up to `FULL_VISIBILITY_NODES` nodes: every visible pair (shortest paths are exact). More (a
    big hall): among each node's `CANDIDATES_PER_NODE` nearest, the `LINKS_PER_NODE` nearest it
    sees plus the nearest it sees in each of `SECTORS` directions (a Yao graph: routes across
    the hall stay nearly straight instead of hopping along its walls); then links between
    whatever pieces that left apart."""
    count = len(points)
    pairs: set[tuple[int, int]] = set()
    if count < 2:
        return pairs
    parent = list(range(count))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def visible(i, candidates) -> np.ndarray:
        segments = shapely.linestrings(
            np.stack([np.repeat(points[i : i + 1], len(candidates), 0), points[candidates]], 1)
        )
        return candidates[shapely.covers(covering, segments)]

    def add(i, j) -> None:
        pairs.add((min(i, j), max(i, j)))
        parent[find(i)] = find(j)

    full = count <= FULL_VISIBILITY_NODES
    for i in range(count):
        offsets = points - points[i]
        distances = np.hypot(*offsets.T)
        distances[i] = np.inf
        if full:
            for j in visible(i, np.arange(i + 1, count)):
                add(i, int(j))
            continue
        order = np.argsort(distances)[:CANDIDATES_PER_NODE]
        seen = visible(i, order[np.isfinite(distances[order])])  # nearest first
        sectors = ((np.arctan2(offsets[seen, 1], offsets[seen, 0]) + math.pi) / (2 * math.pi) * SECTORS).astype(int)
        taken = set()
        for rank, (j, sector) in enumerate(zip(seen, sectors, strict=True)):
            if rank < LINKS_PER_NODE or sector not in taken:
                add(i, int(j))
                taken.add(sector)
    # Pieces left apart by the cap: join each to the nearest node of another piece it sees.
    for _ in range(3):
        roots = np.array([find(i) for i in range(count)])
        values, sizes = np.unique(roots, return_counts=True)
        if len(values) == 1:
            break
        for i in np.flatnonzero(roots != values[np.argmax(sizes)]):
            distances = np.hypot(*(points - points[i]).T)
            others = np.flatnonzero(roots != roots[i])
            others = others[np.argsort(distances[others])][:200]
            seen = visible(int(i), others)
            if len(seen):
                add(int(i), int(seen[0]))
    return pairs


# -- between levels -----------------------------------------------------------------------


def _add_vertical_spaces(graph: _Graph, vertical_nodes: list[tuple[_SpacePart, int]]) -> None:
    """A stairs, escalator, elevator or ramp space joins each level it serves to the next one.

    A space on several levels (a level list, repeat_on) joins its own centres. Spaces drawn once
    per level (IMDF units, OSM stair rooms mapped floor by floor) join the space of the same kind
    on the next level of the building that overlaps them by at least `STACKED_OVERLAP`.
    """
    own: dict[int, tuple[Space, dict[Decimal, int]]] = {}
    single: dict[tuple[str, Decimal], list[tuple[_SpacePart, int]]] = defaultdict(list)
    for part, vertex_id in vertical_nodes:
        if not part.space.routable:
            continue
        if len(set(part.space.levels)) > 1:
            own.setdefault(id(part.space), (part.space, {}))[1].setdefault(part.level, vertex_id)
        else:
            single[part.space.kind, part.level].append((part, vertex_id))
    for space, served in own.values():
        levels = sorted(served)
        for lower, upper in zip(levels, levels[1:], strict=False):
            _climb(graph, space, served[lower], served[upper])
    levels = sorted({level for _, level in single})
    for lower, upper in zip(levels, levels[1:], strict=False):
        for kind in VERTICAL_SPACES:
            for below, a in single.get((kind, lower), []):
                for above, b in single.get((kind, upper), []):
                    shared = below.polygon.intersection(above.polygon).area
                    if shared >= STACKED_OVERLAP * min(below.polygon.area, above.polygon.area):
                        _climb(graph, below.space, a, b)


def _climb(graph: _Graph, space: Space, lower: int, upper: int) -> None:
    extra = VERTICAL_EXTRA_M.get(space.kind, RAMP_EXTRA_M)
    up, down = _directed(extra, space.oneway)
    graph.edge(lower, upper, _vertical_kind(space.kind, space.wheelchair), up, down, _point_line(graph, lower, upper))


def _point_line(graph: _Graph, a: int, b: int) -> str:
    (lon_a, lat_a), (lon_b, lat_b) = graph.lonlat[a], graph.lonlat[b]
    return f"LINESTRING({lon_a!r} {lat_a!r},{lon_b!r} {lat_b!r})"


def _add_connectors(plan: IndoorPlan, graph: _Graph, connector_vertices: dict) -> None:
    """Elevator nodes: each served level's vertex joins the next served level's.

    A connector vertex that nothing reached on its level (outside every space, on no line) joins
    the nearest vertex within `CONNECTOR_REACH_M` on that level.
    """
    by_level: dict[Decimal, list[int]] = defaultdict(list)
    for vertex_id, level in graph.level.items():
        if graph.degree.get(vertex_id):
            by_level[level].append(vertex_id)
    for index, connector in enumerate(plan.connectors):
        served = {}
        for level in sorted(set(connector.levels)):
            vertex_id = connector_vertices.get((index, level))
            if vertex_id is None:
                continue
            if not graph.degree.get(vertex_id):
                nearest = _nearest(graph, vertex_id, by_level.get(level, []))
                if nearest is None:
                    continue
                graph.edge(vertex_id, nearest, "corridor", 0.0, 0.0)
            served[level] = vertex_id
        kind = connector.kind if connector.kind in VERTICAL_EXTRA_M else "elevator"
        extra = VERTICAL_EXTRA_M[kind]
        kind = _vertical_kind(kind, connector.wheelchair)
        levels = sorted(served)
        for lower, upper in zip(levels, levels[1:], strict=False):
            graph.edge(
                served[lower], served[upper], kind, extra, extra, _point_line(graph, served[lower], served[upper])
            )


def _nearest(graph: _Graph, vertex_id: int, candidates: list[int]) -> int | None:
    x, y = graph.position[vertex_id]
    best, best_distance = None, CONNECTOR_REACH_M
    for other in candidates:
        ox, oy = graph.position[other]
        distance = math.hypot(ox - x, oy - y)
        if other != vertex_id and distance <= best_distance:
            best, best_distance = other, distance
    return best
