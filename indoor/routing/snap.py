"""Places: where a room or a point is, and the usable vertex it snaps to (see README, Routing)."""

from __future__ import annotations

from indoor.errors import NotFound
from indoor.extensions import get_db, get_settings
from indoor.http.params import CategoryPlace, RoomPlace
from indoor.queries import routing as queries
from indoor.routing import geometry, itinerary
from indoor.routing.errors import NoRoute


def resolve(cur, place, profile: str, graph_key: str | None = None) -> dict:
    """Where a place is and the vertex it snaps to: a plain dict (cached as is).

    {"missing": True} for an unknown room; "vertex" None when its level has no usable vertex
    within ROUTE_MAX_SNAP_M, then "far_m" says how far the nearest one is (None: none at all).
    `graph_key`: the snapshot's; when this worker holds that version's geometry (geometry.py),
    the vertex is found in memory (the same answer), else by NEAREST_VERTEX.
    """
    room = queries.room(cur, place.room) if isinstance(place, RoomPlace) else None
    where = _position(place, room)
    if isinstance(where, dict):
        return where
    lon, lat, level_value = where
    max_m = get_settings().route_max_snap_m
    held = geometry.ready(graph_key, cur) if graph_key is not None and isinstance(profile, str) else None
    snap = held.nearest(lon, lat, level_value, profile, max_m) if held is not None else None
    if snap is None:
        snap = queries.nearest_vertex(cur, lon, lat, level_value, profile, max_m)
    if snap is None:
        resolved = _describe(room, lon, lat, level_value, None)
        resolved["far_m"] = queries.nearest_distance(cur, lon, lat, level_value, profile)
        return resolved
    return _describe(room, lon, lat, level_value, snap)


def _position(place, room: queries.Room | None) -> tuple | dict:
    """(lon, lat, level) of a point or of the room read for it; {"missing"} for a room that does
    not exist, {"unlocated"} for one another tool left without a usable position or level."""
    if not isinstance(place, RoomPlace):
        return place.lon, place.lat, place.level
    if room is None:
        return {"missing": True}
    if room.lon is None:
        return {"unlocated": True}
    return room.lon, room.lat, room.level


def room_resolved(room: queries.Room, snap: queries.Snap) -> dict:
    """What resolve() says of a room that snapped to `snap` (a room chosen by its category)."""
    return _describe(room, room.lon, room.lat, room.level, snap)


def _describe(room: queries.Room | None, lon: float, lat: float, level_value, snap: queries.Snap | None) -> dict:
    level = itinerary.json_level(level_value)
    if room is not None:
        resolved = {
            "description": {
                "room": room.id,
                "name": room.name,
                "level": level,
                "building": room.building,
                "coordinates": itinerary.point(lon, lat),
            },
            "label": room.name,
        }
    else:
        resolved = {"description": {"coordinates": itinerary.point(lon, lat), "level": level}, "label": None}
    resolved.update(lon=lon, lat=lat, level=level)
    if snap is None:
        resolved["vertex"] = None
    else:
        resolved.update(vertex=snap.vertex, vertex_lon=snap.lon, vertex_lat=snap.lat, connector_m=snap.metres)
        resolved["description"].update(vertex=snap.vertex, connector_m=round(snap.metres, 3))
    return resolved


def resolve_all(cur, places, profile: str, known: list) -> tuple[dict, list]:
    """Versions and every place not in `known`, in one snapshot (a category place stays None:
    which room it is depends on the route, see category.py)."""
    found_versions = queries.snapshot_versions(cur)
    return found_versions, [
        k if k is not None or isinstance(p, CategoryPlace) else resolve(cur, p, profile, found_versions["graph_key"])
        for p, k in zip(places, known, strict=True)
    ]


def resolve_held(places, profile, known: list, graph_key: str) -> tuple[dict, list] | None:
    """resolve_all() in one round trip, when this worker holds the graph version's vertices
    (geometry.py): the versions and the rooms in one statement, the vertices found in memory.
    None when any place needs the SQL (then resolve_all answers, in a snapshot). `graph_key`:
    the worker's latest (versions.py): no copy of it held, no statement spent here."""
    if not isinstance(profile, str) or not get_settings().route_index or geometry.peek(graph_key) is None:
        return None
    wanted = [p for p, k in zip(places, known, strict=True) if k is None and not isinstance(p, CategoryPlace)]
    room_ids = sorted({p.room for p in wanted if isinstance(p, RoomPlace)})
    found_versions, rooms = get_db().read(lambda cur: queries.versions_and_rooms(cur, room_ids), one_statement=True)
    held = geometry.peek(found_versions["graph_key"])
    if held is None:
        return None
    max_m = get_settings().route_max_snap_m
    resolved = []
    for place, k in zip(places, known, strict=True):
        if k is not None or isinstance(place, CategoryPlace):
            resolved.append(k)
            continue
        room = rooms.get(place.room) if isinstance(place, RoomPlace) else None
        where = _position(place, room)
        if isinstance(where, dict):
            resolved.append(where)
            continue
        lon, lat, level = where
        found = held.nearest(lon, lat, level, profile, max_m)
        if found is None:
            return None  # far, or not certain: the SQL decides (and says how far)
        resolved.append(_describe(room, lon, lat, level, found))
    return found_versions, resolved


def as_place(resolved: dict, name: str, raw) -> itinerary.Place:
    """`name`: the parameter as messages name it ("'from'", "'via' #2")."""
    if resolved.get("missing"):
        raise NotFound(f"room {raw.room} (parameter {name}) does not exist")
    if resolved.get("unlocated"):
        raise NoRoute(f"no route: room {raw.room} (parameter {name}) has no usable position or level in the database")
    return itinerary.Place(
        description=resolved["description"],
        lon=resolved["lon"],
        lat=resolved["lat"],
        level=resolved["level"],
        label=resolved["label"],
        vertex_lon=resolved.get("vertex_lon", 0.0),
        vertex_lat=resolved.get("vertex_lat", 0.0),
        connector_m=resolved.get("connector_m", 0.0),
    )


def require_vertex(resolved: dict, name: str) -> None:
    if resolved.get("vertex") is not None:
        return
    far_m = resolved.get("far_m")
    if far_m is not None:
        raise NoRoute(
            f"no route: parameter {name} is {far_m:.0f} m from the walkable network on level {resolved['level']};"
            f" places snap only within ROUTE_MAX_SNAP_M = {get_settings().route_max_snap_m:g} m of it"
        )
    raise NoRoute(
        f"no route: parameter {name} is on level {resolved['level']}, which has no walkable network for this profile"
    )
