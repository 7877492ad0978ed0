"""An IMDF archive (Apple Indoor Mapping Data Format, a folder or a .zip) -> IndoorPlan.

IMDF has units (polygons with a category), openings (door segments), levels (an `ordinal` and a
`short_name`), occupants and anchors (who is in a unit), fixtures and relationships, never a
graph. What each becomes:

- level `ordinal` -> the level; its `short_name` -> the level's display name;
- units by category: `walkway` (and `walkway.island`, `footbridge`, `movingwalkway`) are
  corridors; `lobby`, `platform`, `terrace`, `unenclosedarea` are areas; `stairs`/`steps`,
  `escalator`, `elevator`, `ramp` are vertical spaces; structure (`column`, `structure`, `shaft`,
  `opentobelow`, walls of `brick`/`concrete`/`drywall`/`glass`/`wood`) and fixtures are cut out
  of the spaces around them; `nonpublic` units and units with a `restriction` are closed;
  every other unit is a room, entered only through its openings;
- vertical units of one kind whose outlines overlap on consecutive levels join those levels
  (`derive_network` stacks them); relationships (`elevator`, `escalator`, `stairs`, `ramp`)
  join the units they name with a climbing line, one way when `direction` is `directed` (those
  units are then landings, not stacked);
- openings of a pedestrian category are doors; others (service, automobile, emergency exits)
  are left out of routing;
- room labels: the occupant anchored in the unit (its name and category), else the unit's name
  with the unit category (`restroom.female` -> `restroom`), at the anchor or the unit's
  `display_point`.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from decimal import Decimal

import shapely
from shapely.geometry import LineString, Point, shape

from indoor.importers.plan import (
    IndoorPlan,
    Line,
    Opening,
    PlanFeature,
    Room,
    Space,
    UnreadableSource,
)

CORRIDOR_UNITS = frozenset({"walkway", "walkway.island", "footbridge", "movingwalkway"})
AREA_UNITS = frozenset({"lobby", "platform", "terrace", "unenclosedarea"})
VERTICAL_UNITS = {
    "stairs": "stairs",
    "steps": "stairs",
    "escalator": "escalator",
    "elevator": "elevator",
    "ramp": "ramp",
}
OBSTRUCTION_UNITS = frozenset(
    {"column", "structure", "shaft", "opentobelow", "brick", "concrete", "drywall", "glass", "wood", "vegetation"}
)
CLOSED_UNITS = frozenset({"nonpublic"})
VERTICAL_RELATIONSHIPS = {"elevator": "elevator", "escalator": "escalator", "stairs": "stairs", "ramp": "ramp"}
LANGUAGES = ("en", "en-US")


@dataclass
class _Unit:
    id: str
    level: Decimal
    category: str
    geometry: object
    properties: dict
    source: str


class _Archive:
    """The archive's `<name>.geojson` files, from a folder or a zip (possibly in a subfolder)."""

    def __init__(self, path: str):
        self.path = path
        self.name = os.path.basename(path.rstrip("/"))
        self.members: dict[str, str] = {}
        if os.path.isdir(path):
            for entry in os.listdir(path):
                self.members[entry.lower()] = os.path.join(path, entry)
            self.zip = None
        else:
            try:
                self.zip = zipfile.ZipFile(path)
                for member in self.zip.namelist():
                    self.members.setdefault(os.path.basename(member).lower(), member)
            except (zipfile.BadZipFile, OSError) as error:
                raise UnreadableSource(f"{self.name}: not a readable IMDF zip archive: {error}") from None

    def features(self, kind: str) -> list[dict]:
        document = self.json(f"{kind}.geojson")
        if document is None:
            return []
        features = document.get("features") if isinstance(document, dict) else None
        if not isinstance(features, list):
            raise UnreadableSource(f"{self.name}: {kind}.geojson: not a GeoJSON FeatureCollection")
        return features

    def json(self, filename: str):
        member = self.members.get(filename)
        if member is None:
            return None
        try:
            if self.zip is None:
                with open(member, "rb") as file:
                    data = file.read()
            else:
                data = self.zip.read(member)
            return json.loads(data.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as error:
            raise UnreadableSource(f"{self.name}: {filename}: not readable JSON: {error}") from None


def read_imdf(path: str) -> IndoorPlan:
    archive = _Archive(path)
    manifest = archive.json("manifest.json") or {}
    language = manifest.get("language") if isinstance(manifest, dict) else None
    plan = IndoorPlan()

    levels: dict[str, Decimal] = {}
    for feature in archive.features("level"):
        properties, source = _properties(feature, "level", archive)
        ordinal = properties.get("ordinal")
        if not isinstance(ordinal, (int, float)) or isinstance(ordinal, bool) or ordinal != ordinal:
            raise UnreadableSource(f"{archive.name}: {source}: ordinal {ordinal!r} is not a number")
        level = Decimal(str(ordinal)).normalize() + 0
        levels[str(feature.get("id"))] = level
        short_name = _text(properties.get("short_name"), language) or _text(properties.get("name"), language)
        if short_name:
            plan.level_names.setdefault(level, short_name)
        outline = _geometry(feature, source, archive, required=False)
        if outline is not None:
            plan.features.append(PlanFeature(outline, level, "level", _text(properties.get("name"), language)))
    if not levels:
        raise UnreadableSource(f"{archive.name}: no level.geojson features: not an IMDF archive with levels")

    units: dict[str, _Unit] = {}
    for feature in archive.features("unit"):
        properties, source = _properties(feature, "unit", archive)
        unit = _Unit(
            str(feature.get("id")),
            _level_of(properties, levels, source, archive),
            str(properties.get("category") or "unspecified").lower(),
            _geometry(feature, source, archive),
            properties,
            source,
        )
        units[unit.id] = unit
    obstructions = _obstructions(units.values(), archive, levels)
    related = _add_relationships(plan, archive, units)
    for unit in units.values():
        _add_unit(plan, unit, obstructions.get(unit.level), language, unit.id in related)
    _add_openings(plan, archive, levels, language)
    _add_labels(plan, archive, units, language)
    return plan


def _properties(feature, kind: str, archive: _Archive) -> tuple[dict, str]:
    if not isinstance(feature, dict):
        raise UnreadableSource(f"{archive.name}: {kind}.geojson: a feature that is not an object")
    source = f"{kind} {feature.get('id')}"
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise UnreadableSource(f"{archive.name}: {source}: no properties")
    return properties, source


def _geometry(feature: dict, source: str, archive: _Archive, required: bool = True):
    raw = feature.get("geometry")
    if raw is None and not required:
        return None
    try:
        geometry = shape(raw)
    except Exception as error:  # shapely raises several types for malformed GeoJSON
        raise UnreadableSource(f"{archive.name}: {source}: unreadable geometry: {error}") from None
    if geometry.is_empty or not shapely.is_valid_input(geometry):
        raise UnreadableSource(f"{archive.name}: {source}: empty geometry")
    coords = shapely.get_coordinates(geometry)
    if not (abs(coords[:, 0]) <= 180).all() or not (abs(coords[:, 1]) <= 90).all():
        raise UnreadableSource(f"{archive.name}: {source}: coordinates are not WGS 84 longitude/latitude")
    return shapely.make_valid(geometry) if not geometry.is_valid else geometry


def _level_of(properties: dict, levels: dict, source: str, archive: _Archive) -> Decimal:
    level = levels.get(str(properties.get("level_id")))
    if level is None:
        raise UnreadableSource(f"{archive.name}: {source}: level_id {properties.get('level_id')!r} names no level")
    return level


def _text(label, language: str | None) -> str | None:
    """An IMDF label ({"en": "Room 1"}) in the manifest's language, else English, else any."""
    if isinstance(label, str):
        return label.strip() or None
    if not isinstance(label, dict) or not label:
        return None
    for key in (language, *LANGUAGES):
        if key and isinstance(label.get(key), str) and label[key].strip():
            return label[key].strip()
    first = next((v for v in label.values() if isinstance(v, str) and v.strip()), None)
    return first.strip() if first else None


def _obstructions(units, archive: _Archive, levels: dict) -> dict[Decimal, object]:
    """Per level, what nobody walks through: structural units and fixtures."""
    pieces: dict[Decimal, list] = {}
    for unit in units:
        if unit.category in OBSTRUCTION_UNITS:
            pieces.setdefault(unit.level, []).append(unit.geometry)
    for feature in archive.features("fixture"):
        properties, source = _properties(feature, "fixture", archive)
        geometry = _geometry(feature, source, archive)
        if geometry.geom_type in ("Polygon", "MultiPolygon"):
            pieces.setdefault(_level_of(properties, levels, source, archive), []).append(geometry)
    return {level: shapely.union_all(parts) for level, parts in pieces.items()}


def _add_unit(plan: IndoorPlan, unit: _Unit, obstruction, language: str | None, related: bool) -> None:
    name = _text(unit.properties.get("name"), language)
    category = unit.category
    if category in OBSTRUCTION_UNITS:
        plan.features.append(PlanFeature(unit.geometry, unit.level, "structure", name))
        return
    if category in CORRIDOR_UNITS:
        kind = "corridor"
    elif category in AREA_UNITS:
        kind = "area"
    else:
        kind = VERTICAL_UNITS.get(category, "room")
    plan.features.append(PlanFeature(unit.geometry, unit.level, kind, name))
    if related and kind in VERTICAL_UNITS.values():
        # Its relationship's line climbs (one way if directed); as a landing it is walkable
        # ground, so it is not also joined to an overlapping unit above both ways.
        kind = "area"
    geometry = unit.geometry
    if obstruction is not None and geometry.intersects(obstruction):
        geometry = geometry.difference(obstruction)  # a hall around a column
    if geometry.is_empty:
        return
    accessibility = unit.properties.get("accessibility") or []
    plan.spaces.append(
        Space(
            geometry,
            (unit.level,),
            kind,
            name,
            _room_category(category),
            routable=category not in CLOSED_UNITS and not unit.properties.get("restriction"),
            wheelchair=True if "wheelchair" in accessibility else None,
            source=unit.source,
        )
    )


def _room_category(category: str) -> str | None:
    if category in ("unspecified", ""):
        return None
    return category.split(".")[0]


def _add_relationships(plan: IndoorPlan, archive: _Archive, units: dict[str, _Unit]) -> set[str]:
    """Vertical relationships: a climbing line from the origin unit to the destination unit
    (through the intermediaries); -> the ids of the units they join."""
    related = set()
    for feature in archive.features("relationship"):
        properties, source = _properties(feature, "relationship", archive)
        kind = VERTICAL_RELATIONSHIPS.get(str(properties.get("category") or "").split(".")[0])
        if kind is None:
            continue  # traversal: IMDF's hint for a path, not a connection
        chain = [properties.get("origin"), *(properties.get("intermediary") or []), properties.get("destination")]
        ids = [str(ref.get("id")) for ref in chain if isinstance(ref, dict)]
        found = [units[i] for i in ids if i in units]
        if len(found) < 2:
            raise UnreadableSource(f"{archive.name}: {source}: origin or destination names no unit")
        oneway = 1 if properties.get("direction") == "directed" else 0
        for lower, upper in zip(found, found[1:], strict=False):
            if lower.level == upper.level:
                continue
            line = LineString([_inside_point(lower.geometry), _inside_point(upper.geometry)])
            plan.lines.append(Line(line, (lower.level, upper.level), kind=kind, oneway=oneway, source=source))
        related.update(u.id for u in found)
    return related


def _add_openings(plan: IndoorPlan, archive: _Archive, levels: dict, language: str | None) -> None:
    for feature in archive.features("opening"):
        properties, source = _properties(feature, "opening", archive)
        geometry = _geometry(feature, source, archive)
        level = _level_of(properties, levels, source, archive)
        category = str(properties.get("category") or "pedestrian")
        accessibility = properties.get("accessibility") or []
        routable = category.startswith("pedestrian") and not properties.get("access_control")
        plan.openings.append(
            Opening(
                geometry,
                (level,),
                routable=routable,
                wheelchair=True if "wheelchair" in accessibility else None,
                source=source,
            )
        )
        plan.features.append(PlanFeature(geometry, level, "door", _text(properties.get("name"), language)))


def _add_labels(plan: IndoorPlan, archive: _Archive, units: dict[str, _Unit], language: str | None) -> None:
    """One room label per room unit: its occupant (through an anchor) else its own name."""
    labelled = set()
    anchors = {}
    for feature in archive.features("anchor"):
        properties, source = _properties(feature, "anchor", archive)
        anchors[str(feature.get("id"))] = (_geometry(feature, source, archive), str(properties.get("unit_id")))
    for feature in archive.features("occupant"):
        properties, source = _properties(feature, "occupant", archive)
        anchor = anchors.get(str(properties.get("anchor_id")))
        name = _text(properties.get("name"), language)
        if anchor is None or anchor[1] not in units or not name:
            continue
        point, unit_id = anchor
        unit = units[unit_id]
        category = str(properties.get("category") or unit.category)
        plan.rooms.append(Room(point, unit.level, name, _room_category(category), source=source))
        labelled.add(unit_id)
    for unit in units.values():
        if unit.id in labelled or unit.category in OBSTRUCTION_UNITS | CORRIDOR_UNITS | AREA_UNITS:
            continue
        name = _text(unit.properties.get("name"), language)
        if not name:
            continue
        display = unit.properties.get("display_point")
        point = None
        if isinstance(display, dict):
            try:
                point = shape(display)
            except Exception:  # a malformed display point: fall back to a point inside
                point = None
        if point is None or point.geom_type != "Point" or not unit.geometry.contains(point):
            point = _inside_point(unit.geometry)
        plan.rooms.append(Room(point, unit.level, name, _room_category(unit.category), source=unit.source))


def _inside_point(geometry) -> Point:
    """The polygon's centroid when inside it (a label looks centred), else a point surely inside."""
    centroid = geometry.centroid
    return centroid if geometry.contains(centroid) else geometry.representative_point()
