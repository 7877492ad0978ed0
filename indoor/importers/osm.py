"""Import an OpenStreetMap extract with Simple Indoor Tagging into the contract tables.

- Routing: `highway=footway|corridor|path|pedestrian` ways on their `level` become corridor
  edges, split at every node another way (or an elevator) shares on the same level; `oneway=yes`
  closes the way backwards. `highway=steps` with `level=a;b` become one stairs edge from its
  first to its last node; `conveying=*` makes it an escalator (`forward`/`backward`: one-way).
  Which end is on which level comes from the footways that meet each end, else from `incline`.
  `highway=elevator` nodes with `level=a;b;c` join the footway vertices of that node on
  consecutive levels.
- Rooms: `indoor=room` ways (and `shop=*` nodes) with a name or ref become labelled points.
- Floor plan: `indoor=room|corridor|area|wall|yes` ways, one feature per level they are on.

A vertex is (OSM node, level): the same node on two levels is two vertices.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from decimal import Decimal, InvalidOperation

from indoor.queries.network import Network

WALKABLE = {"footway", "corridor", "path", "pedestrian"}
PLAN_LAYERS = {"room", "corridor", "area", "wall", "yes"}
STAIRS_EXTRA_M = 5.0  # climbing costs more than walking the same horizontal distance
ESCALATOR_EXTRA_M = 2.0
ELEVATOR_COST_M = 10.0  # the wait, as metres of walking


def parse_levels(value: str | None) -> list[Decimal]:
    """'0' -> [0]; '-2;-1' -> [-2, -1]; '0-2' (a range) -> [0, 1, 2]; junk -> []."""
    if not value:
        return []
    levels = []
    for part in value.replace(",", ";").split(";"):
        part = part.strip()
        try:
            levels.append(Decimal(part))
            continue
        except InvalidOperation:
            pass
        lo, sep, hi = part.rpartition("-")
        try:
            if sep and lo:
                start, end = int(lo), int(hi)
                levels.extend(Decimal(v) for v in range(start, end + 1))
        except ValueError:
            pass
    return levels


def read_osm(path) -> tuple[dict, list]:
    """-> nodes {id: (lon, lat, tags)}, ways [(id, [node ids], tags)]."""
    nodes, ways = {}, []
    for _, element in ET.iterparse(path, events=("end",)):
        if element.tag == "node":
            tags = {t.get("k"): t.get("v") for t in element.iter("tag")}
            nodes[int(element.get("id"))] = (float(element.get("lon")), float(element.get("lat")), tags)
            element.clear()
        elif element.tag == "way":
            tags = {t.get("k"): t.get("v") for t in element.iter("tag")}
            refs = [int(nd.get("ref")) for nd in element.iter("nd")]
            ways.append((int(element.get("id")), refs, tags))
            element.clear()
    return nodes, ways


def build_network(nodes: dict, ways: list, first_vertex: int, first_edge: int, building: str | None) -> Network:
    net = Network()
    vertex_ids: dict[tuple[int, Decimal], int] = {}

    def vertex(node: int, level: Decimal) -> int:
        key = (node, level)
        if key not in vertex_ids:
            vertex_ids[key] = first_vertex + len(vertex_ids)
            lon, lat, _ = nodes[node]
            net.vertices.append((vertex_ids[key], level, lon, lat))
        return vertex_ids[key]

    def edge(a: int, b: int, kind: str, extra_fwd: float, extra_rev: float, refs: list[int]):
        wkt = "LINESTRING(" + ",".join(f"{nodes[r][0]!r} {nodes[r][1]!r}" for r in refs) + ")"
        net.edges.append((first_edge + len(net.edges), a, b, kind, extra_fwd, extra_rev, wkt))

    walkways, stairways = [], []
    for _, refs, tags in ways:
        refs = [r for r in refs if r in nodes]
        if len(refs) < 2:
            continue
        highway = tags.get("highway")
        if highway in WALKABLE:
            levels = parse_levels(tags.get("level")) or [Decimal(0)]
            if len(levels) == 1:  # a walkway spanning levels says nothing of where it climbs
                walkways.append((refs, levels[0], tags))
        elif highway == "steps":
            levels = parse_levels(tags.get("level"))
            if len(levels) >= 2:
                stairways.append((refs, min(levels), max(levels), tags))

    # Where walkways meet: a node used more than once on a level, or by an elevator or stairs.
    uses: dict[tuple[int, Decimal], int] = defaultdict(int)
    levels_at: dict[int, set] = defaultdict(set)
    for refs, level, _ in walkways:
        for i, node in enumerate(refs):
            uses[node, level] += 2 if i in (0, len(refs) - 1) else 1
            levels_at[node].add(level)
    elevators = {n: parse_levels(t.get("level")) for n, (_, _, t) in nodes.items() if t.get("highway") == "elevator"}
    for refs, lo, hi, _ in stairways:
        for node in (refs[0], refs[-1]):
            for level in (lo, hi):
                uses[node, level] += 2

    for refs, level, tags in walkways:
        closed_back = -1.0 if tags.get("oneway") in ("yes", "1", "true") else 0.0
        start = 0
        for i in range(1, len(refs)):
            node = refs[i]
            if i == len(refs) - 1 or uses[node, level] > 1 or node in elevators:
                edge(vertex(refs[start], level), vertex(node, level), "corridor", 0.0, closed_back, refs[start : i + 1])
                start = i

    for refs, lo, hi, tags in stairways:
        first_level, last_level = _stair_levels(refs, lo, hi, tags, levels_at)
        conveying = tags.get("conveying")
        kind = "escalator" if conveying and conveying != "no" else "stairs"
        extra = ESCALATOR_EXTRA_M if kind == "escalator" else STAIRS_EXTRA_M
        forward = -1.0 if conveying == "backward" else extra
        backward = -1.0 if conveying == "forward" else extra
        edge(vertex(refs[0], first_level), vertex(refs[-1], last_level), kind, forward, backward, refs)

    for node, levels in elevators.items():
        served = [level for level in sorted(set(levels)) if (node, level) in vertex_ids]
        for lower, upper in zip(served, served[1:], strict=False):
            lon, lat, _ = nodes[node]
            point = f"{lon!r} {lat!r}"
            net.edges.append(
                (
                    first_edge + len(net.edges),
                    vertex_ids[node, lower],
                    vertex_ids[node, upper],
                    "elevator",
                    ELEVATOR_COST_M,
                    ELEVATOR_COST_M,
                    f"LINESTRING({point},{point})",
                )
            )

    _rooms_and_plan(net, nodes, ways, building)
    return net


def _stair_levels(refs, lo, hi, tags, levels_at) -> tuple[Decimal, Decimal]:
    """Which level each end of a stairway is on: the walkways that meet it, else `incline`."""
    at_first = levels_at.get(refs[0], set()) & {lo, hi}
    at_last = levels_at.get(refs[-1], set()) & {lo, hi}
    if len(at_first) == 1:
        first = next(iter(at_first))
        return first, hi if first == lo else lo
    if len(at_last) == 1:
        last = next(iter(at_last))
        return (hi if last == lo else lo), last
    if tags.get("incline") == "down":
        return hi, lo
    return lo, hi


def _label(tags: dict) -> str | None:
    return tags.get("name") or tags.get("ref") or None


def _rooms_and_plan(net: Network, nodes: dict, ways: list, building: str | None) -> None:
    for _, refs, tags in ways:
        indoor = tags.get("indoor")
        if indoor not in PLAN_LAYERS:
            continue
        refs = [r for r in refs if r in nodes]
        if len(refs) < 2:
            continue
        levels = parse_levels(tags.get("level") or tags.get("repeat_on")) or [Decimal(0)]
        coords = [(nodes[r][0], nodes[r][1]) for r in refs]
        closed = len(coords) >= 4 and refs[0] == refs[-1]
        if closed and indoor != "wall":
            if _signed_area(coords) < 0:
                coords.reverse()  # counter-clockwise exterior ring (RFC 7946)
            wkt = "POLYGON((" + ",".join(f"{x!r} {y!r}" for x, y in coords) + "))"
        else:
            wkt = "LINESTRING(" + ",".join(f"{x!r} {y!r}" for x, y in coords) + ")"
        for level in levels:
            net.plan.append((indoor, _label(tags), level, building, wkt))
        label = _label(tags)
        if indoor == "room" and label:
            ring = coords[:-1] if closed else coords
            lon = sum(x for x, _ in ring) / len(ring)
            lat = sum(y for _, y in ring) / len(ring)
            net.rooms.append((label, levels[0], building, lon, lat, None))
    for lon, lat, tags in nodes.values():
        label = _label(tags)
        if "shop" in tags and label and tags.get("level"):
            levels = parse_levels(tags.get("level"))
            if levels:
                net.rooms.append((label, levels[0], building, lon, lat, None))


def _signed_area(coords) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(coords, coords[1:], strict=False)) / 2
