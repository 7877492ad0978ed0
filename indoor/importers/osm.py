"""OpenStreetMap indoor data (Simple Indoor Tagging) -> `IndoorPlan`, from any of its exports.

Three readers, one interpretation: OSM XML (`.osm`) and PBF (`.osm.pbf`, through pyosmium) are
read into nodes, ways and relations and assembled into features (closed area ways and
multipolygon relations become polygons); GeoJSON exported from OSM (osmtogeojson, Overpass turbo)
already is features. `plan_from_features` reads the tags of those features:

- Spaces: `indoor=room|corridor|area` polygons (`indoor=yes` ones count as areas, as rooms
  when they carry `shop`, `amenity` or `room`). A space with
  `stairs=yes` or `highway=steps` is a stairs space, `highway=elevator` an elevator,
  `conveying=*` an escalator (`conveying=forward|backward` with `incline=up|down`: one-way).
  Levels: `level` and `repeat_on`, lists (`0;2` is 0 and 2), ranges (`-1-2` is -1, 0, 1, 2) and
  decimals (`0.5`). `access=private|no`: not routable; `wheelchair=no`: not for the accessible
  profile. Category: `amenity`, then `shop` (as `shop`), then `room`, then `toilets=yes`.
- Openings: `door=*` (not `door=no`), `entrance=*` and `indoor=door` nodes (or ways); a door
  without `level` is on the levels of the spaces whose outline it lies on.
- Routing lines (kept unless `routing_lines=False`): `highway=footway|corridor|path|pedestrian`
  lines on one level (`oneway=yes`: first -> last only); `highway=steps` on two levels, one edge
  from its first to its last node, which end is on which level from the footways that meet each
  end, else from `incline`; `conveying=*` makes it an escalator (`forward`/`backward`: one-way).
- Connectors: `highway=elevator` nodes with a level list.
- Rooms (labelled points): `indoor=room` spaces (stair and elevator rooms too) named by `name`,
  else `ref`; `shop=*` and
  `indoor=room` nodes with a name and a level.
- Floor plan: `indoor=room|corridor|area|wall|yes` features on each of their levels, doors.
- Level names: `level:ref` of a feature on one level (an `indoor=level` outline's wins).

Every reader raises `UnreadableSource` naming the file and the element it could not read.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, shape
from shapely.ops import polygonize, unary_union

from indoor.importers.plan import (
    Connector,
    IndoorPlan,
    Line,
    Opening,
    PlanFeature,
    Room,
    Space,
    UnreadableSource,
)

WALKABLE = {"footway", "corridor", "path", "pedestrian"}
PLAN_LAYERS = {"room", "corridor", "area", "wall", "yes"}
SPACE_INDOOR = {"room", "corridor", "area", "yes"}
# Closed ways with these tags are areas even without area=yes.
AREA_KEYS = ("building:part", "room", "shop", "amenity")
NOT_ROUTABLE = {"private", "no"}


def parse_levels(value: str | None) -> list[Decimal]:
    """'0' -> [0]; '0;2' -> [0, 2]; '-2;-1' -> [-2, -1]; '-1-2' (a range) -> [-1, 0, 1, 2];
    '0.5' -> [0.5]; junk -> []."""
    if not value:
        return []
    levels = []
    for part in value.replace(",", ";").split(";"):
        part = part.strip()
        try:
            level = Decimal(part)
            if level.is_finite():
                levels.append(level)
            continue
        except InvalidOperation:
            pass
        # A range: the separator is the first '-' that follows a digit ('-2--1', '-1-2', '0-3').
        for i in range(1, len(part)):
            if part[i] == "-" and part[i - 1].isdigit():
                try:
                    start, end = Decimal(part[:i]), Decimal(part[i + 1 :])
                except InvalidOperation:
                    break
                if start.is_finite() and end.is_finite() and start <= end and end - start <= 200:
                    levels.extend(Decimal(v) for v in range(math.ceil(start), math.floor(end) + 1))
                    levels.extend(v for v in (start, end) if v != v.to_integral_value())
                break
    return sorted(dict.fromkeys(levels))


# -- reading the formats ------------------------------------------------------------------


@dataclass
class OsmData:
    """A file's elements: nodes {id: (lon, lat, tags)}, ways (id, [node ids], tags), relations
    (id, [(member type 'node'|'way'|'relation', ref, role)], tags)."""

    nodes: dict[int, tuple[float, float, dict]] = field(default_factory=dict)
    ways: list[tuple[int, list[int], dict]] = field(default_factory=list)
    relations: list[tuple[int, list[tuple[str, int, str]], dict]] = field(default_factory=list)


@dataclass
class OsmFeature:
    source: str  # "way/123"
    geometry: object  # shapely, lon/lat
    tags: dict


def read_osm_xml(path) -> OsmData:
    data = OsmData()
    element_name = "the file"
    try:
        for _, element in ET.iterparse(path, events=("end",)):
            if element.tag not in ("node", "way", "relation"):
                continue
            element_name = f"{element.tag}/{element.get('id')}"
            tags = {t.get("k"): t.get("v") for t in element.iter("tag")}
            element_id = int(element.get("id"))
            if element.tag == "node":
                lon, lat = float(element.get("lon")), float(element.get("lat"))
                if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
                    raise ValueError("lon/lat out of range")
                data.nodes[element_id] = (lon, lat, tags)
            elif element.tag == "way":
                data.ways.append((element_id, [int(nd.get("ref")) for nd in element.iter("nd")], tags))
            else:
                members = [(m.get("type"), int(m.get("ref")), m.get("role") or "") for m in element.iter("member")]
                data.relations.append((element_id, members, tags))
            element.clear()
    except ET.ParseError as exc:
        raise UnreadableSource(f"{path}: not readable OSM XML after {element_name}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise UnreadableSource(f"{path}: {element_name} cannot be read: {exc}") from None
    return data


def read_osm_pbf(path) -> OsmData:
    import osmium

    data = OsmData()
    member_types = {"n": "node", "w": "way", "r": "relation"}

    class Collector(osmium.SimpleHandler):
        def node(self, node):
            if node.location.valid():
                data.nodes[node.id] = (node.location.lon, node.location.lat, dict(node.tags))

        def way(self, way):
            data.ways.append((way.id, [n.ref for n in way.nodes], dict(way.tags)))

        def relation(self, relation):
            members = [(member_types.get(m.type, m.type), m.ref, m.role) for m in relation.members]
            data.relations.append((relation.id, members, dict(relation.tags)))

    try:
        Collector().apply_file(str(path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise UnreadableSource(f"{path}: not a readable OSM PBF file: {exc}") from None
    return data


def features_from_osm(data: OsmData) -> list[OsmFeature]:
    """Tagged nodes as points, ways as lines or (closed areas) polygons, multipolygons."""
    features = []
    for node_id, (lon, lat, tags) in data.nodes.items():
        if tags:
            features.append(OsmFeature(f"node/{node_id}", Point(lon, lat), tags))
    way_coords = {}
    for way_id, refs, tags in data.ways:
        coords = [data.nodes[r][:2] for r in refs if r in data.nodes]
        if len(coords) < 2:
            continue  # clipped out of the extract
        way_coords[way_id] = coords
        if not tags:
            continue
        closed = len(coords) >= 4 and refs[0] == refs[-1] and len(coords) == len(refs)
        if closed and _is_area(tags):
            features.append(OsmFeature(f"way/{way_id}", Polygon(coords), tags))
        else:
            features.append(OsmFeature(f"way/{way_id}", LineString(coords), tags))
    for relation_id, members, tags in data.relations:
        if tags.get("type") != "multipolygon":
            continue
        outer = [
            LineString(way_coords[ref])
            for kind, ref, role in members
            if kind == "way" and ref in way_coords and role != "inner"
        ]
        inner = [
            LineString(way_coords[ref])
            for kind, ref, role in members
            if kind == "way" and ref in way_coords and role == "inner"
        ]
        outers = unary_union(list(polygonize(outer)))
        if outers.is_empty:
            continue
        area = outers.difference(unary_union(list(polygonize(inner)))) if inner else outers
        if not area.is_empty:
            features.append(OsmFeature(f"relation/{relation_id}", area, tags))
    return features


def _is_area(tags: dict) -> bool:
    if tags.get("area") == "no" or tags.get("indoor") == "wall":
        return False
    if tags.get("area") == "yes" or tags.get("indoor") in ("room", "corridor", "area", "level"):
        return True
    if tags.get("highway") in WALKABLE or tags.get("highway") == "steps":
        return False
    return tags.get("indoor") == "yes" or any(key in tags for key in AREA_KEYS)


def read_osm_geojson(path) -> list[OsmFeature]:
    """GeoJSON from osmtogeojson or Overpass turbo: tags in `properties.tags` or flattened."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableSource(f"{path}: not readable GeoJSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise UnreadableSource(f"{path}: not a GeoJSON FeatureCollection")
    features = []
    for index, feature in enumerate(document["features"]):
        if not isinstance(feature, dict):
            raise UnreadableSource(f"{path}: feature {index} is not a GeoJSON feature")
        properties = feature.get("properties") or {}
        source = str(feature.get("id") or properties.get("@id") or properties.get("id") or f"feature {index}")
        tags = properties.get("tags") if isinstance(properties.get("tags"), dict) else properties
        tags = {str(k): str(v) for k, v in tags.items() if not str(k).startswith("@") and k != "id" and v is not None}
        if feature.get("geometry") is None:
            continue
        try:
            geometry = shape(feature["geometry"])
        except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.ShapelyError) as exc:
            raise UnreadableSource(f"{path}: {source} has an unreadable geometry: {exc}") from None
        if geometry.is_empty:
            continue
        if not np.isfinite(shapely.get_coordinates(geometry)).all():
            raise UnreadableSource(f"{path}: {source} has a coordinate that is not a finite number")
        # osmtogeojson keeps some closed area ways (indoor=*) as LineStrings.
        if isinstance(geometry, LineString) and geometry.is_closed and len(geometry.coords) >= 4 and _is_area(tags):
            geometry = Polygon(geometry.coords)
        features.append(OsmFeature(source, geometry, tags))
    return features


def sniff(path) -> str:
    """'pbf', 'xml' or 'geojson', from the file's first bytes."""
    with open(path, "rb") as file:
        head = file.read(64)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        return "xml"
    if stripped.startswith(b"{"):
        return "geojson"
    if b"OSMHeader" in head:
        return "pbf"
    raise UnreadableSource(f"{path}: neither OSM XML, OSM PBF nor GeoJSON")


def read_plan(path, routing_lines: bool = True) -> IndoorPlan:
    """Any OSM export (XML, PBF, GeoJSON) as an IndoorPlan; the format comes from the content."""
    path = Path(path)
    kind = sniff(path)
    if kind == "xml":
        features = features_from_osm(read_osm_xml(path))
    elif kind == "pbf":
        features = features_from_osm(read_osm_pbf(path))
    else:
        features = read_osm_geojson(path)
    return plan_from_features(features, routing_lines=routing_lines)


# -- what the tags mean -------------------------------------------------------------------


def plan_from_features(features: list[OsmFeature], routing_lines: bool = True) -> IndoorPlan:
    plan = IndoorPlan()
    steps = []
    for feature in features:
        tags, geometry = feature.tags, feature.geometry
        levels = tuple(parse_levels(tags.get("level")) + parse_levels(tags.get("repeat_on")))
        levels = tuple(sorted(set(levels))) or (Decimal(0),)
        polygonal = isinstance(geometry, (Polygon, MultiPolygon))
        _level_name(plan, tags, levels, feature)
        if polygonal and _space_kind(tags):
            _add_space(plan, feature, levels)
        elif isinstance(geometry, Point):
            _add_point(plan, feature, levels)
        elif isinstance(geometry, LineString) and routing_lines:
            highway = tags.get("highway")
            if highway in WALKABLE and len(levels) == 1:
                oneway = 1 if tags.get("oneway") in ("yes", "1", "true") else (-1 if tags.get("oneway") == "-1" else 0)
                plan.lines.append(
                    Line(geometry, levels, "corridor", oneway, _routable(tags), _wheelchair(tags), feature.source)
                )
            elif highway == "steps" and len(levels) >= 2:
                steps.append(feature)
            if tags.get("indoor") in ("door",):
                plan.openings.append(Opening(geometry, levels, _routable(tags), _wheelchair(tags), feature.source))
        if tags.get("indoor") in PLAN_LAYERS:
            for level in levels:
                plan.features.append(PlanFeature(geometry, level, tags["indoor"], _label(tags)))
    _add_steps(plan, steps)
    _door_levels(plan)
    return plan


DOOR_ON_OUTLINE_DEG = 5e-6  # about half a metre


def _door_levels(plan: IndoorPlan) -> None:
    """Doors mapped without `level` take the levels of the spaces on whose outline they lie (as
    a node of those ways, in OSM's own terms), else level 0; then join the floor plan."""
    spaces = [s for s in plan.spaces if not s.geometry.is_empty]
    tree = shapely.STRtree([s.geometry for s in spaces]) if spaces else None
    for opening in plan.openings:
        if not opening.levels:
            near = tree.query(opening.geometry, predicate="dwithin", distance=DOOR_ON_OUTLINE_DEG) if tree else []
            levels = {
                level
                for i in near
                if spaces[i].geometry.boundary.distance(opening.geometry) <= DOOR_ON_OUTLINE_DEG
                for level in spaces[i].levels
            }
            opening.levels = tuple(sorted(levels)) or (Decimal(0),)
        if isinstance(opening.geometry, Point):
            for level in opening.levels:
                plan.features.append(PlanFeature(opening.geometry, level, "door"))


def _level_name(plan: IndoorPlan, tags: dict, levels: tuple, feature: OsmFeature) -> None:
    name = tags.get("level:ref")
    if name and len(levels) == 1 and (tags.get("indoor") == "level" or levels[0] not in plan.level_names):
        plan.level_names[levels[0]] = name


def _space_kind(tags: dict) -> str | None:
    indoor = tags.get("indoor")
    conveying = tags.get("conveying")
    vertical = (
        "escalator"
        if conveying and conveying != "no"
        else "elevator"
        if tags.get("highway") == "elevator" or tags.get("elevator") == "yes"
        else "stairs"
        if tags.get("stairs") == "yes" or tags.get("highway") == "steps"
        else None
    )
    if indoor == "yes":  # not Simple Indoor Tagging, but common: a shop's outline, else an area
        return vertical or ("room" if any(tags.get(key) for key in ("shop", "amenity", "room")) else "area")
    if indoor in SPACE_INDOOR:
        return vertical or indoor
    return vertical if indoor not in ("wall", "level", "no", None) or vertical == "elevator" else None


def _routable(tags: dict) -> bool:
    return tags.get("access") not in NOT_ROUTABLE


def _wheelchair(tags: dict) -> bool | None:
    value = tags.get("wheelchair")
    return False if value == "no" else (True if value == "yes" else None)


def _label(tags: dict) -> str | None:
    return tags.get("name") or tags.get("ref") or None


def _category(tags: dict, kind: str | None = None) -> str | None:
    if tags.get("amenity"):
        return tags["amenity"]
    if tags.get("shop"):
        return "shop"
    if tags.get("room") and tags["room"] != "yes":
        return tags["room"]
    if tags.get("toilets") == "yes":
        return "toilets"
    return kind if kind in ("stairs", "escalator", "elevator") else None


def _label_point(geometry) -> Point:
    centroid = geometry.centroid
    return centroid if geometry.contains(centroid) else geometry.representative_point()


def _add_space(plan: IndoorPlan, feature: OsmFeature, levels: tuple) -> None:
    tags = feature.tags
    kind = _space_kind(tags)
    oneway = 0
    if kind == "escalator" and tags.get("conveying") in ("forward", "backward"):
        up = (tags.get("incline") == "up") == (tags.get("conveying") == "forward")
        oneway = (1 if up else -1) if tags.get("incline") in ("up", "down") else 0
    label = _label(tags)
    category = _category(tags, kind)
    plan.spaces.append(
        Space(
            feature.geometry,
            levels,
            kind,
            label,
            category,
            _routable(tags),
            _wheelchair(tags),
            feature.source,
            oneway,
        )
    )
    if label and (tags.get("indoor") == "room" or kind == "room"):
        plan.rooms.append(Room(_label_point(feature.geometry), levels[0], label, category, feature.source))


def _add_point(plan: IndoorPlan, feature: OsmFeature, levels: tuple) -> None:
    tags = feature.tags
    explicit_levels = bool(tags.get("level") or tags.get("repeat_on"))
    if tags.get("highway") == "elevator" and len(levels) >= 2:
        plan.connectors.append(
            Connector(feature.geometry, levels, "elevator", _routable(tags), _wheelchair(tags), feature.source)
        )
    is_door = (tags.get("door") and tags["door"] != "no") or tags.get("entrance") or tags.get("indoor") == "door"
    if is_door:
        routable = _routable(tags) and tags.get("door") != "no"
        # Without a level of its own, a door is on the levels of the outlines it lies on (below).
        door_levels = levels if explicit_levels else ()
        plan.openings.append(Opening(feature.geometry, door_levels, routable, _wheelchair(tags), feature.source))
    label = _label(tags)
    if label and explicit_levels and ("shop" in tags or tags.get("indoor") == "room"):
        plan.rooms.append(Room(feature.geometry, levels[0], label, _category(tags), feature.source))


def _add_steps(plan: IndoorPlan, steps: list[OsmFeature]) -> None:
    """Stairways between two levels: which end is on which level, from the footways at each end."""
    levels_at: dict[tuple, set] = defaultdict(set)
    for line in plan.lines:
        for point in line.geometry.coords:
            levels_at[point[:2]].add(line.levels[0])
    for feature in steps:
        tags = feature.tags
        levels = parse_levels(tags.get("level"))
        low, high = min(levels), max(levels)
        coords = list(feature.geometry.coords)
        at_first = levels_at.get(coords[0][:2], set()) & {low, high}
        at_last = levels_at.get(coords[-1][:2], set()) & {low, high}
        if len(at_first) == 1:
            first = next(iter(at_first))
            ends = (first, high if first == low else low)
        elif len(at_last) == 1:
            last = next(iter(at_last))
            ends = (high if last == low else low, last)
        else:
            ends = (high, low) if tags.get("incline") == "down" else (low, high)
        conveying = tags.get("conveying")
        kind = "escalator" if conveying and conveying != "no" else "stairs"
        oneway = 1 if conveying == "forward" else (-1 if conveying == "backward" else 0)
        plan.lines.append(
            Line(feature.geometry, ends, kind, oneway, _routable(tags), _wheelchair(tags), feature.source)
        )
