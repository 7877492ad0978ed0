"""A shortest path as users read it: legs to draw, a distance, a duration and instructions.

Pure Python over the rows pgRouting returned (no database, no Flask): the path's edges in
travel order plus the two straight connectors from the start place to its vertex and from the
end vertex to the end place.

Legs: one per maximal run of edges of the same kind on the same level. An edge whose two ends
are on different levels (stairs, escalator, elevator, a ramp between levels) makes a leg of its
own; consecutive such edges of the same kind form one leg (an elevator ride from 0 to 3 is one
leg, `level` 0, `to_level` 3). Each leg starts at the coordinate where the previous one ended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Edge kinds whose every use adds a penalty to the duration (settings: *_PENALTY_S).
PENALTY_KINDS = ("stairs", "escalator", "elevator")
STRAIGHT_DEG = 25.0  # a change of heading below this is "continue"
SLIGHT_DEG = 60.0  # below this, "bear left/right"
U_TURN_DEG = 150.0
_CARDINALS = ["north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest"]


def json_level(value):
    """A level for JSON: 0, 1, -1 as integers, 0.5 as a float."""
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def point(lon: float, lat: float) -> list[float]:
    return [round(float(lon), 7), round(float(lat), 7)]


@dataclass
class Segment:
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


def legs(parts: list[Segment]) -> list[Leg]:
    result: list[Leg] = []
    for seg in parts:
        key = ("vertical", seg.kind) if seg.vertical else ("level", seg.kind, seg.from_level)
        if not result or result[-1].key != key:
            leg = Leg(key, seg.kind, seg.from_level, seg.to_level)
            if result:
                leg.coordinates.append(result[-1].coordinates[-1])
            result.append(leg)
        leg = result[-1]
        for coordinate in seg.coordinates:
            coordinate = [coordinate[0], coordinate[1]]
            if not leg.coordinates or coordinate != leg.coordinates[-1]:
                leg.coordinates.append(coordinate)
        leg.cost += seg.cost
        leg.to_level = seg.to_level
    for leg in result:
        if len(leg.coordinates) == 1:  # a LineString needs two positions (an elevator in place)
            leg.coordinates.append(list(leg.coordinates[0]))
    return result


def _bearing(a, b) -> float | None:
    dx = (b[0] - a[0]) * math.cos(math.radians((a[1] + b[1]) / 2))
    dy = b[1] - a[1]
    if abs(dx) < 1e-10 and abs(dy) < 1e-10:
        return None
    return math.degrees(math.atan2(dx, dy)) % 360


def _bearings(coordinates) -> tuple[float | None, float | None]:
    """Heading when entering the polyline and when leaving it."""
    first = last = None
    for a, b in zip(coordinates, coordinates[1:], strict=False):
        bearing = _bearing(a, b)
        if bearing is not None:
            first = bearing if first is None else first
            last = bearing
    return first, last


def _cardinal(bearing: float) -> str:
    return _CARDINALS[int((bearing + 22.5) // 45) % 8]


def _level_text(level) -> str:
    return str(json_level(level))


def _vertical_text(kind: str, from_level, to_level) -> str:
    target = _level_text(to_level)
    if kind == "elevator":
        return f"Take the elevator to level {target}"
    direction = "up" if float(to_level) > float(from_level) else "down"
    return f"Take the {kind} {direction} to level {target}"


def _turn_text(turn: float) -> str | None:
    size = abs(turn)
    if size < STRAIGHT_DEG:
        return None
    side = "right" if turn > 0 else "left"
    if size < SLIGHT_DEG:
        return f"Bear {side}"
    if size < U_TURN_DEG:
        return f"Turn {side}"
    return "Turn around"


def instructions(parts: list[Segment], destination: Place) -> list[dict]:
    """Steps in travel order; each step's distance_m is walked after its manoeuvre."""
    steps: list[dict] = []
    heading = None
    vertical_run = None  # (kind, from_level) of the vertical step in progress

    def step(text, level):
        steps.append({"text": text, "distance_m": 0.0, "level": json_level(level)})

    for seg in parts:
        if seg.vertical:
            if vertical_run and vertical_run[0] == seg.kind:
                steps[-1]["text"] = _vertical_text(seg.kind, vertical_run[1], seg.to_level)
            else:
                vertical_run = (seg.kind, seg.from_level)
                step(_vertical_text(seg.kind, seg.from_level, seg.to_level), seg.from_level)
            steps[-1]["distance_m"] += seg.cost
            heading = None
            continue
        first, last = _bearings(seg.coordinates)
        if not steps or vertical_run is not None:
            step(f"Head {_cardinal(first)}" if first is not None else "Start", seg.from_level)
        elif heading is not None and first is not None:
            text = _turn_text((first - heading + 540) % 360 - 180)
            if text:
                step(text, seg.from_level)
        vertical_run = None
        steps[-1]["distance_m"] += seg.cost
        if last is not None:
            heading = last
    name = destination.label if destination.label else "your destination"
    step(f"Arrive at {name}", destination.level)
    for s in steps:
        s["distance_m"] = round(s["distance_m"], 2)
    return steps


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


def route_collection(stops: list[Place], paths: list[dict | None], graph_version, profile: str, settings) -> dict:
    """The response body (see API.md, Routes) through `stops` in order: `paths[k]` is the path
    from stop k to stop k+1, None where the two are the same place. One set of legs for the
    whole route (they run on through every via); instructions say "Reach ..." at each via and
    "Arrive at ..." at the end; `distance_m` is the sum of the parts."""
    origin, destination = stops[0], stops[-1]
    parts: list[Segment] = []
    steps: list[dict] = []
    distance = 0.0
    last = max((k for k, path in enumerate(paths) if path is not None), default=None)
    for k, path in enumerate(paths):
        if path is None:
            continue
        start, end = stops[k], stops[k + 1]
        part = segments(start, end, path["edges"])
        parts.extend(part)
        distance += path["cost"] + start.connector_m + end.connector_m
        # The last part that moves arrives (a via at the destination is the destination).
        part_steps = instructions(part, end if k < last else destination)
        if k < last:
            part_steps[-1]["text"] = f"Reach {end.label or f'via point {k + 1}'}"
        steps.extend(part_steps)
    if not parts:  # the same place throughout
        here = point(origin.lon, origin.lat)
        route_legs = [Leg(("level", "corridor", origin.level), "corridor", origin.level, origin.level, [here, here])]
        distance = 0.0
        steps = [{"text": f"Arrive at {destination.label or 'your destination'}", "distance_m": 0.0}]
        steps[0]["level"] = json_level(destination.level)
    else:
        route_legs = legs(parts)
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
        instructions=steps,
        graph_version=graph_version,
    )
    return {"type": "FeatureCollection", "features": features, "route": summary}
