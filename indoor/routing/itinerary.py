"""A shortest path as users read it: legs to draw, a distance, a duration and maneuvers.

Pure Python over the rows pgRouting returned (no database, no Flask): the path's edges in
travel order plus the two straight connectors from the start place to its vertex and from the
end vertex to the end place.

Legs: one per maximal run of edges of the same kind on the same level. An edge whose two ends
are on different levels (stairs, escalator, elevator, a ramp between levels) makes a leg of its
own; consecutive such edges of the same kind form one leg (an elevator ride from 0 to 3 is one
leg, `level` 0, `to_level` 3). Each leg starts at the coordinate where the previous one ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

from indoor.routing import directions

# Edge kinds whose every use adds a penalty to the duration (settings: *_PENALTY_S).
PENALTY_KINDS = ("stairs", "escalator", "elevator")


def json_level(value):
    """A level for JSON: 0, 1, -1 as integers, 0.5 as a float."""
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def point(lon: float, lat: float) -> list[float]:
    return [round(float(lon), 7), round(float(lat), 7)]


class Segment(NamedTuple):
    """One edge of the path (a tuple: directions reads a route's segments column-wise, `zip(*parts)`)."""

    kind: str
    from_level: object
    to_level: object
    cost: float
    coordinates: list

    @property
    def vertical(self) -> bool:
        return self.from_level != self.to_level


@dataclass
class Place:
    """One end of the route: where it is, how it snapped, how to name it."""

    description: dict  # the "from"/"to" object of the response
    lon: float
    lat: float
    level: object
    label: str | None = None  # a room's name
    vertex_lon: float = 0.0
    vertex_lat: float = 0.0
    connector_m: float = 0.0


@dataclass
class Leg:
    key: tuple
    kind: str
    level: object
    to_level: object
    coordinates: list = field(default_factory=list)
    cost: float = 0.0


def segments(origin: Place, destination: Place, edges: list[tuple]) -> list[Segment]:
    """The path's edges plus the straight connectors at both ends (omitted when of length 0).

    `edges`: (kind, from_level, to_level, cost, coordinates) in travel order.
    """
    body = [Segment(*edge) for edge in edges]
    result = []
    start = [point(origin.lon, origin.lat), point(origin.vertex_lon, origin.vertex_lat)]
    if origin.connector_m > 0 or start[0] != start[1]:
        first = body[0] if body else None
        kind = first.kind if first and not first.vertical and first.from_level == origin.level else "corridor"
        result.append(Segment(kind, origin.level, origin.level, origin.connector_m, start))
    result.extend(body)
    end = [point(destination.vertex_lon, destination.vertex_lat), point(destination.lon, destination.lat)]
    if destination.connector_m > 0 or end[0] != end[1]:
        last = body[-1] if body else None
        kind = last.kind if last and not last.vertical and last.to_level == destination.level else "corridor"
        result.append(Segment(kind, destination.level, destination.level, destination.connector_m, end))
    return result


def legs(parts: list[Segment]) -> tuple[list[Leg], list[tuple]]:
    """The legs to draw, and where each segment lies in them: (leg index, [coordinate index in
    that leg of each of the segment's coordinates]) so a maneuver can point into the geometry."""
    result: list[Leg] = []
    positions: list[tuple] = []
    for seg in parts:
        key = ("vertical", seg.kind) if seg.vertical else ("level", seg.kind, seg.from_level)
        if not result or result[-1].key != key:
            leg = Leg(key, seg.kind, seg.from_level, seg.to_level)
            if result and result[-1].coordinates:  # an edge with nothing to draw has none
                leg.coordinates.append(result[-1].coordinates[-1])
            result.append(leg)
        leg = result[-1]
        indices = []
        for coordinate in seg.coordinates:
            coordinate = [coordinate[0], coordinate[1]]
            if not leg.coordinates or coordinate != leg.coordinates[-1]:
                leg.coordinates.append(coordinate)
            indices.append(len(leg.coordinates) - 1)
        if not indices:
            indices.append(max(len(leg.coordinates) - 1, 0))
        positions.append((len(result) - 1, indices))
        leg.cost += seg.cost
        leg.to_level = seg.to_level
    for leg in result:
        if len(leg.coordinates) == 1:  # a LineString needs two positions (an elevator in place)
            leg.coordinates.append(list(leg.coordinates[0]))
    return result, positions


def levels_visited(parts: list[Segment], origin: Place) -> list:
    seen = []
    for level in [origin.level, *(lv for seg in parts for lv in (seg.from_level, seg.to_level))]:
        value = json_level(level)
        if value not in seen:
            seen.append(value)
    return seen


def duration_s(distance_m: float, route_legs: list[Leg], settings) -> float:
    penalties = {
        "stairs": settings.stairs_penalty_s,
        "escalator": settings.escalator_penalty_s,
        "elevator": settings.elevator_penalty_s,
    }
    total = distance_m / settings.walking_speed_mps
    total += sum(penalties.get(leg.kind, 0.0) for leg in route_legs)
    return total


def route_collection(
    stops: list[Place], paths: list[dict | None], graph_version, profile: str, settings, spaces, timings=None
) -> tuple[dict, list[dict]]:
    """The response body (see API.md, Routes) through `stops` in order, without its words, and
    its maneuvers (directions.py; the blueprint renders them as `route.instructions` in the
    request's language). `paths[k]` is the path from stop k to stop k+1, None where the two are
    the same place. One set of legs for the whole route (they run on through every via); each
    part's maneuvers end in an `arrive` (with `via` at a via); `distance_m` is the sum of the parts.
    `timings`, when given, receives `maneuvers_ms` (what the directions took)."""
    origin, destination = stops[0], stops[-1]
    parts: list[Segment] = []
    ranges = []  # per moving part: (k, first segment, end segment)
    distance = 0.0
    for k, path in enumerate(paths):
        if path is None:
            continue
        start, end = stops[k], stops[k + 1]
        part = segments(start, end, path["edges"])
        ranges.append((k, len(parts), len(parts) + len(part)))
        parts.extend(part)
        distance += path["cost"] + start.connector_m + end.connector_m
    if not parts:  # the same place throughout
        here = point(origin.lon, origin.lat)
        route_legs = [Leg(("level", "corridor", origin.level), "corridor", origin.level, origin.level, [here, here])]
        distance = 0.0
        steps = directions.arrival_only(spaces, destination, (0, 0))
    else:
        route_legs, positions = legs(parts)
        steps = []
        last = ranges[-1][0]
        started = time.perf_counter()
        for k, first, end in ranges:
            # The last part that moves arrives (a via at the destination is the destination).
            steps.extend(
                directions.maneuvers(
                    parts[first:end],
                    positions[first:end],
                    spaces,
                    stops[k],
                    stops[k + 1] if k < last else destination,
                    k + 1 if k < last else None,
                    settings,
                )
            )
        if timings is not None:
            timings["maneuvers_ms"] = (time.perf_counter() - started) * 1000
    features = []
    for leg in route_legs:
        properties = {"level": json_level(leg.level), "kind": leg.kind, "distance_m": round(leg.cost, 2)}
        if leg.to_level != leg.level:
            properties["to_level"] = json_level(leg.to_level)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": leg.coordinates},
                "properties": properties,
            }
        )
    summary = {"from": origin.description, "to": destination.description}
    if len(stops) > 2:
        summary["via"] = [stop.description for stop in stops[1:-1]]
    summary.update(
        profile=profile,
        distance_m=round(distance, 2),
        duration_s=round(duration_s(distance, route_legs, settings), 1),
        levels=levels_visited(parts, origin),
        graph_version=graph_version,
    )
    return {"type": "FeatureCollection", "features": features, "route": summary}, steps
