"""Places: where a room or a point is, and the usable vertex it snaps to (see README, Routing)."""

from __future__ import annotations

from indoor.errors import NotFound
from indoor.extensions import get_settings
from indoor.http.params import CategoryPlace, RoomPlace
from indoor.queries import routing as queries
from indoor.routing import graph_arrays, index, itinerary
from indoor.routing.errors import NoRoute


def resolve(cur, place, profile: str, graph_key: str | None = None) -> dict:
    """Where a place is and the vertex it snaps to: a plain dict (cached as is).

    {"missing": True} for an unknown room; "vertex" None when its level has no usable vertex
    within ROUTE_MAX_SNAP_M, then "far_m" says how far the nearest one is (None: none at all).
    `graph_key`: this snapshot's; when the route index's arrays are of it, the snap is computed
    in memory (graph_arrays.py), else (or when they cannot tell) by SQL.
    """
    if isinstance(place, RoomPlace):
        room = queries.room(cur, place.room)
        if room is None:
            return {"missing": True}
        if room.lon is None:  # another tool left it without a usable position or level
            return {"unlocated": True}
        lon, lat, level_value = room.lon, room.lat, room.level
    else:
        room = None
        lon, lat, level_value = place.lon, place.lat, place.level
    snap = _in_memory(lon, lat, level_value, profile, graph_key)
    if snap is graph_arrays.UNANSWERED:
        snap = queries.nearest_vertex(cur, lon, lat, level_value, profile, get_settings().route_max_snap_m)
    if snap is None:
        resolved = _describe(room, lon, lat, level_value, None)
        resolved["far_m"] = queries.nearest_distance(cur, lon, lat, level_value, profile)
        return resolved
    return _describe(room, lon, lat, level_value, snap)


def _in_memory(lon: float, lat: float, level, profile, graph_key: str | None):
    """The snap from the route index's arrays of `graph_key`, or UNANSWERED."""
    if graph_key is None or not get_settings().route_index:
        return graph_arrays.UNANSWERED
    if isinstance(profile, queries.Rules):
        if profile.avoid:
            return graph_arrays.UNANSWERED
        profile = profile.profile
    found = index.held(graph_key)
    arrays = found.arrays if found is not None else None
    if arrays is None or arrays.graph_key != graph_key:
        return graph_arrays.UNANSWERED
    return graph_arrays.nearest(arrays, lon, lat, level, profile, get_settings().route_max_snap_m)


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


def resolve_in_memory(places, profile, found_versions: dict, known: list) -> list | None:
    """resolve_all()'s places with no read: rooms from the worker's rooms of `found_versions`,
    snapped in the route index's arrays of its graph (graph_arrays.py). None when anything is
    not held or not answerable exactly in memory (resolve_all() answers)."""
    if not get_settings().route_index:
        return None
    if isinstance(profile, queries.Rules):
        if profile.avoid:
            return None
        profile = profile.profile
    todo = [
        k for k, (p, r) in enumerate(zip(places, known, strict=True)) if r is None and not isinstance(p, CategoryPlace)
    ]
    if not todo:
        return list(known)
    found = index.held(found_versions["graph_key"])
    arrays = found.arrays if found is not None else None
    if arrays is None or arrays.graph_key != found_versions["graph_key"]:
        return None
    rooms = None
    if any(isinstance(places[k], RoomPlace) for k in todo):
        rooms = graph_arrays.rooms_of(found_versions["rooms_key"])
        if rooms is None:
            return None
    max_m = get_settings().route_max_snap_m
    resolved = list(known)
    for k in todo:
        place = places[k]
        if isinstance(place, RoomPlace):
            room = graph_arrays.room(rooms, place.room)
            if room is None:
                resolved[k] = {"missing": True}
                continue
            if room.lon is None:
                resolved[k] = {"unlocated": True}
                continue
            lon, lat, level_value = room.lon, room.lat, room.level
        else:
            room = None
            lon, lat, level_value = place.lon, place.lat, place.level
        snap = graph_arrays.nearest(arrays, lon, lat, level_value, profile, max_m)
        if snap is graph_arrays.UNANSWERED:
            return None
        resolved[k] = _describe(room, lon, lat, level_value, snap)
    return resolved


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
