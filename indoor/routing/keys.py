"""Cache keys: each names exactly the versions and places its entry depends on.

Three things are cached in Redis, all keyed by the versions the database's triggers bump
(indoor_versions: 'graph' for the network tables, 'rooms' for room_points), each with the time
it last changed (so entries of another or a re-created database never match):

- the finished response in no language (its maneuvers beside it; the words are rendered per
  request), keyed by (versions, profile, the places as asked): a hit is one Redis round trip and
  no database. The directions name rooms and spaces ('rooms', 'floor'), so every body names both;
- place -> snapped vertex, keyed by (graph version[, rooms version for a room], profile, place);
- vertex -> vertex path, keyed by (graph version, profile, source vertex, target vertex);
  "no route" is cached too. Two ways of naming the same vertices share it;
- every profile above is `rules_key`: the profile, the kinds avoided and the active closures;
- category -> the room chosen, keyed by (versions, profile, category, the vertex it is nearest
  to and in which direction), and category -> its rooms with their snapped vertices.
"""

from __future__ import annotations

import hashlib

from indoor.extensions import get_settings
from indoor.http.params import CategoryPlace, RoomPlace

KEY_VERSION = "v4"  # v4: paths carry their edge ids; profiles carry the kinds avoided and closures


def rules_key(profile: str, avoid: tuple[str, ...], active_closures) -> str:
    """The profile as keys name it: with the edge kinds avoided and the ids of the closures
    active at request time (a closure never changes after it is made: its id names its edges).
    A closure's start, end or removal changes the active set, so every key it touches."""
    key = profile
    if avoid:
        key += "-avoid:" + ",".join(avoid)
    if active_closures:
        ids = ",".join(str(c.id) for c in sorted(active_closures, key=lambda c: c.id))
        if len(ids) > 120:
            ids = "h" + hashlib.sha256(ids.encode()).hexdigest()[:32]
        key += "-closed:" + ids
    return key


def _snap_rule() -> str:
    """Where places snap depends on ROUTE_MAX_SNAP_M: a change of it changes the keys."""
    return f"s{get_settings().route_max_snap_m:g}"


def _model_rule() -> str:
    """A body's durations depend on the routing model (WALKING_SPEED_MPS and the penalties): a
    restart with other values on the same Redis never serves the old durations. Paths and
    category choices are by length only, so their keys do not name it."""
    s = get_settings()
    model = (s.walking_speed_mps, s.stairs_penalty_s, s.escalator_penalty_s, s.elevator_penalty_s)
    return "m" + ",".join(repr(float(value)) for value in model)


def canonical(place) -> str:
    if isinstance(place, RoomPlace):
        return f"r{place.room}"
    if isinstance(place, CategoryPlace):
        return f"c{place.category.lower()!r}"
    return f"p{place.lon!r},{place.lat!r},{place.level.normalize()}"


def place_key(place, found_versions: dict, profile: str) -> str:
    if isinstance(place, RoomPlace):
        rooms = found_versions["rooms_key"]
        return f"route:{KEY_VERSION}:place:{found_versions['graph_key']}:{rooms}:{_snap_rule()}:{profile}:{canonical(place)}"
    return f"route:{KEY_VERSION}:place:{found_versions['graph_key']}:{_snap_rule()}:{profile}:{canonical(place)}"


def body_key(places, found_versions: dict, profile: str) -> str:
    """The finished response, keyed by exactly what it depends on."""
    names = f"{found_versions['rooms_key']}:{found_versions['floor_key']}"
    ends = ":".join(canonical(p) for p in places)
    return (
        f"route:{KEY_VERSION}:body:{found_versions['graph_key']}:{names}:{_snap_rule()}:{_model_rule()}"
        f":{profile}:{ends}"
    )


def path_key(graph_key: str, profile: str, source: int, target: int) -> str:
    return f"route:{KEY_VERSION}:path:{graph_key}:{profile}:{source}:{target}"


def category_key(found_versions: dict, profile: str, category: str, vertex: int, outward: bool) -> str:
    """The room of `category` nearest from `vertex` (outward) or to it."""
    direction = "from" if outward else "to"
    return (
        f"route:{KEY_VERSION}:category:{found_versions['graph_key']}:{found_versions['rooms_key']}:{_snap_rule()}"
        f":{profile}:{direction}:{vertex}:{category.lower()!r}"
    )


def category_rooms_key(found_versions: dict, profile: str, category: str) -> str:
    """Every room of `category` with the vertex it snaps to."""
    return (
        f"route:{KEY_VERSION}:category-rooms:{found_versions['graph_key']}:{found_versions['rooms_key']}"
        f":{_snap_rule()}:{profile}:{category.lower()!r}"
    )
