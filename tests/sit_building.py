"""A generated building in OSM Simple Indoor Tagging, with no routing lines at all.

Three levels (`level:ref` EG, 1.OG, 2.OG), each: an L-shaped corridor with rooms on both sides
of its long arm and on one side of its short arm, a door from each room onto the corridor (a node
on both outlines); a wide hall (a multipolygon with a column as its inner ring) beside the
corridor, sharing an edge with it, with rooms along its far side. Between levels: a stair room
(`level=0`, `repeat_on=1;2`) with one door node on all three levels, an elevator shaft
(`highway=elevator`, `level=0-2`, a range), a second stair room drawn once per level and open
to the hall, an elevator node in the hall (`level=0;1;2`) and a
one-way escalator area in the hall (`conveying=forward`, `incline=up`, levels 0 and 1). The
hall's doors carry no `level` (their ways' levels apply).

Left out on purpose: `1.N04` has no door (unreachable); `0.S05` is `access=private`; the door of
`Lab 2.E01` is `wheelchair=no` (unreachable for the accessible profile only).

`SitBuilding.write(directory)` writes it as OSM XML, PBF and osmtogeojson-style GeoJSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

ORIGIN_LON, ORIGIN_LAT = 13.4050, 52.5200
M_PER_DEG_LAT = 111_132.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(ORIGIN_LAT))
LEVELS = (0, 1, 2)
LEVEL_REFS = {0: "EG", 1: "1.OG", 2: "2.OG"}

UNREACHABLE = {"1.N04", "0.S05"}  # no door; private
NOT_ACCESSIBLE = {"Lab 2.E01"}  # wheelchair=no door


def lonlat(x: float, y: float) -> tuple[float, float]:
    return round(ORIGIN_LON + x / M_PER_DEG_LON, 9), round(ORIGIN_LAT + y / M_PER_DEG_LAT, 9)


@dataclass
class SitBuilding:
    nodes: dict = field(default_factory=dict)  # id -> (lon, lat, tags)
    ways: list = field(default_factory=list)  # (id, [node ids], tags)
    relations: list = field(default_factory=list)  # (id, [(type, ref, role)], tags)
    _node_at: dict = field(default_factory=dict)

    # -- building blocks ------------------------------------------------------------------

    def node(self, level, x, y, tags=None) -> int:
        key = (level, round(x, 3), round(y, 3))
        if key not in self._node_at:
            node_id = len(self.nodes) + 1
            self._node_at[key] = node_id
            self.nodes[node_id] = (*lonlat(x, y), {})
        node_id = self._node_at[key]
        if tags:
            self.nodes[node_id][2].update(tags)
        return node_id

    def way(self, level, ring, tags, extra_points=()) -> int:
        """A closed way through `ring` (metres), with `extra_points` (doors) inserted on its edges."""
        points = list(ring)
        closed = []
        for a, b in zip(points, points[1:] + points[:1], strict=True):
            closed.append(a)
            on_edge = [p for p in extra_points if _on_segment(p, a, b)]
            on_edge.sort(key=lambda p: math.dist(p, a))
            closed.extend(on_edge)
        refs = [self.node(level, x, y) for x, y in closed]
        way_id = len(self.ways) + 1
        self.ways.append((way_id, refs + refs[:1], tags))
        return way_id

    def line(self, level, points, tags) -> int:
        way_id = len(self.ways) + 1
        self.ways.append((way_id, [self.node(level, x, y) for x, y in points], tags))
        return way_id

    # -- the building ---------------------------------------------------------------------

    @classmethod
    def generate(cls) -> SitBuilding:
        b = cls()
        stair_door = (0.0, 1.5)
        lift_door = (58.5, 30.0)
        for level in LEVELS:
            lv = str(level)
            b.way(
                level,
                [(-8, -30), (96, -30), (96, 36), (-8, 36)],
                {"indoor": "level", "level": lv, "level:ref": LEVEL_REFS[level]},
            )
            south = [(6 * i + 3, 0.0) for i in range(10)]
            north = [(6 * i + 3, 3.0) for i in range(9) if not (level == 1 and i == 4)]
            east = [(60.0, 6.0 + 6 * j) for j in range(4)]
            corridor = [(0, 0), (60, 0), (60, 30), (57, 30), (57, 3), (0, 3)]
            doors = south + north + east + [stair_door, lift_door]
            b.way(level, corridor, {"indoor": "corridor", "level": lv, "name": f"Corridor {LEVEL_REFS[level]}"}, doors)
            for i, door in enumerate(south):
                ref = f"{level}.S{i:02d}"
                tags = {"indoor": "room", "level": lv, "ref": ref}
                tags.update({"amenity": "toilets"} if i == 0 else {"room": "office"})
                if ref == "0.S05":
                    tags["access"] = "private"
                b.way(level, [(6 * i, -6), (6 * i + 6, -6), (6 * i + 6, 0), (6 * i, 0)], tags, [door])
                b.node(level, *door, {"door": "hinged", "level": lv})
            for i in range(9):
                ref = f"{level}.N{i:02d}"
                door = [(6 * i + 3, 3.0)] if (6 * i + 3, 3.0) in north else []
                b.way(
                    level,
                    [(6 * i, 3), (6 * i + 6, 3), (6 * i + 6, 9), (6 * i, 9)],
                    {"indoor": "room", "level": lv, "ref": ref, "room": "class"},
                    door,
                )
                for d in door:
                    b.node(level, *d, {"door": "yes", "level": lv})
            for j, door in enumerate(east):
                ref = f"{level}.E{j:02d}"
                b.way(
                    level,
                    [(60, 3 + 6 * j), (66, 3 + 6 * j), (66, 9 + 6 * j), (60, 9 + 6 * j)],
                    {"indoor": "room", "level": lv, "ref": ref, "name": f"Lab {ref}"},
                    [door],
                )
                door_tags = {"door": "hinged", "level": lv}
                if ref == "2.E01":
                    door_tags["wheelchair"] = "no"
                b.node(level, *door, door_tags)
            b.node(level, *lift_door, {"door": "sliding", "level": lv})
            # The hall: a multipolygon whose inner ring is a column; rooms along its south side.
            hall_doors = [(63 + 6 * k, -20.0) for k in range(5)]
            outer = b.way(level, [(60, -20), (90, -20), (90, 3), (60, 3)], {}, hall_doors)
            inner = b.way(level, [(73, -10), (77, -10), (77, -6), (73, -6)], {})
            relation_id = len(b.relations) + 1
            b.relations.append(
                (
                    relation_id,
                    [("way", outer, "outer"), ("way", inner, "inner")],
                    {"type": "multipolygon", "indoor": "area", "level": lv, "name": f"Hall {LEVEL_REFS[level]}"},
                )
            )
            for k, door in enumerate(hall_doors):
                ref = f"{level}.H{k:02d}"
                tags = {"indoor": "room", "level": lv, "ref": ref}
                tags.update({"shop": "kiosk", "name": f"Kiosk {level}"} if k == 0 else {"room": "storage"})
                b.way(level, [(60 + 6 * k, -26), (66 + 6 * k, -26), (66 + 6 * k, -20), (60 + 6 * k, -20)], tags, [door])
                b.node(level, *door, {"door": "yes"})  # no level: the outlines it is on tell
            b.line(level, [(-8, -30), (96, -30)], {"indoor": "wall", "level": lv})
            # A second stair core drawn once per level (as IMDF units and many OSM mappers do),
            # open to the hall along the edge they share.
            b.way(
                level,
                [(90, -4), (94, -4), (94, 0), (90, 0)],
                {"indoor": "room", "stairs": "yes", "level": lv, "name": "Stairs East"},
            )
        # Between levels.
        b.way(
            0,
            [(-5, -1), (0, -1), (0, 4), (-5, 4)],
            {"indoor": "room", "stairs": "yes", "level": "0", "repeat_on": "1;2", "name": "Stairs West"},
            [stair_door],
        )
        b.node(0, *stair_door, {"door": "hinged", "level": "0;1;2"})
        b.way(
            0,
            [(57, 30), (60, 30), (60, 33), (57, 33)],
            {"indoor": "room", "highway": "elevator", "level": "0-2", "name": "Lift North"},
            [lift_door],
        )
        b.node(0, 85.0, -15.0, {"highway": "elevator", "level": "0;1;2", "name": "Hall lift"})
        b.way(
            0,
            [(80, -12), (82, -12), (82, -2), (80, -2)],
            {"indoor": "area", "conveying": "forward", "incline": "up", "level": "0;1", "name": "Escalator up"},
        )
        return b

    def rooms(self) -> list[tuple[str, str]]:
        """Every labelled room way the file has, (label, level): what room_points should hold."""
        return sorted(
            (tags.get("name") or tags.get("ref"), tags["level"])
            for _, _, tags in self.ways
            if tags.get("indoor") == "room"
        )

    # -- writers --------------------------------------------------------------------------

    def write(self, directory: Path) -> dict[str, Path]:
        paths = {"xml": directory / "sit.osm", "pbf": directory / "sit.osm.pbf", "geojson": directory / "sit.geojson"}
        paths["xml"].write_text(self.to_xml(), encoding="utf-8")
        self.write_pbf(paths["pbf"])
        paths["geojson"].write_text(json.dumps(self.to_geojson()), encoding="utf-8")
        return paths

    def to_xml(self) -> str:
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="tests/sit_building.py">']
        for node_id, (lon, lat, tags) in self.nodes.items():
            lines.append(f'  <node id="{node_id}" lat="{lat}" lon="{lon}" version="1">{_tags(tags)}</node>')
        for way_id, refs, tags in self.ways:
            nds = "".join(f'<nd ref="{r}"/>' for r in refs)
            lines.append(f'  <way id="{way_id}" version="1">{nds}{_tags(tags)}</way>')
        for relation_id, members, tags in self.relations:
            mem = "".join(f'<member type="{t}" ref="{r}" role="{role}"/>' for t, r, role in members)
            lines.append(f'  <relation id="{relation_id}" version="1">{mem}{_tags(tags)}</relation>')
        lines.append("</osm>")
        return "\n".join(lines) + "\n"

    def write_pbf(self, path: Path) -> None:
        import osmium
        from osmium.osm import mutable

        writer = osmium.SimpleWriter(str(path))
        try:
            for node_id, (lon, lat, tags) in self.nodes.items():
                writer.add_node(mutable.Node(id=node_id, location=(lon, lat), tags=tags, version=1))
            for way_id, refs, tags in self.ways:
                writer.add_way(mutable.Way(id=way_id, nodes=refs, tags=tags, version=1))
            for relation_id, members, tags in self.relations:
                writer.add_relation(
                    mutable.Relation(
                        id=relation_id, members=[(t[0], r, role) for t, r, role in members], tags=tags, version=1
                    )
                )
        finally:
            writer.close()

    def to_geojson(self) -> dict:
        """As osmtogeojson writes it: areas as polygons (the multipolygon with its hole),
        tags flattened into properties beside `@id`, tagged nodes as points."""
        coords = {node_id: [lon, lat] for node_id, (lon, lat, _) in self.nodes.items()}
        members = {ref for _, ms, _ in self.relations for _, ref, _ in ms}
        features = []
        for node_id, (lon, lat, tags) in self.nodes.items():
            if tags:
                features.append(_feature(f"node/{node_id}", {"type": "Point", "coordinates": [lon, lat]}, tags))
        for way_id, refs, tags in self.ways:
            if way_id in members and not tags:
                continue
            ring = [coords[r] for r in refs]
            if refs[0] == refs[-1] and tags.get("indoor") != "wall":
                geometry = {"type": "Polygon", "coordinates": [_counter_clockwise(ring)]}
            else:
                geometry = {"type": "LineString", "coordinates": ring}
            features.append(_feature(f"way/{way_id}", geometry, tags))
        ways = {way_id: refs for way_id, refs, _ in self.ways}
        for relation_id, ms, tags in self.relations:
            outer = [_counter_clockwise([coords[r] for r in ways[ref]]) for _, ref, role in ms if role == "outer"]
            holes = [
                list(reversed(_counter_clockwise([coords[r] for r in ways[ref]])))
                for _, ref, role in ms
                if role == "inner"
            ]
            geometry = {"type": "Polygon", "coordinates": outer + holes}
            features.append(_feature(f"relation/{relation_id}", geometry, tags))
        return {"type": "FeatureCollection", "features": features}


def _feature(osm_id: str, geometry: dict, tags: dict) -> dict:
    return {"type": "Feature", "id": osm_id, "properties": {"@id": osm_id, **tags}, "geometry": geometry}


def _counter_clockwise(ring: list) -> list:
    area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False))
    return ring if area > 0 else list(reversed(ring))


def _tags(tags: dict) -> str:
    return "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())


def _on_segment(p, a, b) -> bool:
    (px, py), (ax, ay), (bx, by) = p, a, b
    cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    inside = min(ax, bx) - 1e-9 <= px <= max(ax, bx) + 1e-9 and min(ay, by) - 1e-9 <= py <= max(ay, by) + 1e-9
    return abs(cross) < 1e-9 and inside and p != a and p != b
