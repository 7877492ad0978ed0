"""Routing: exact shortest routes through a campus, cached, as legs and maneuvers.

One idea per module:

- route.py      a request's route: the caches in front, one exact search per miss, the body
- keys.py       cache keys, each naming the versions and places its entry depends on
- versions.py   the data versions a worker trusts for ROUTE_VERSION_MAX_AGE_S
- snap.py       places: a room or a point, and the usable vertex it snaps to
- category.py   the nearest room of a category by route cost (exact bounded one-to-many)
- search.py     the exact search: window tries, overlay choice, the first radius learned
- windows.py    search windows that provably hold every path of cost <= R
- overlay.py    keeping the overlay current: background rebuild after the graph changed
- index.py      the in-memory route index (contraction hierarchies) per worker per graph version
- itinerary.py  a path as users read it: legs, distance, duration, maneuvers
- directions.py maneuvers from a path (turn bands, merging, names); no language in it
- spaces.py     the named spaces, footprints, connector rooms and level names per floor-plan version
- errors.py     422 no_route

Every SQL statement they run is in indoor/queries/ (routing.py, overlay.py, versions.py).
"""

from indoor.routing.route import route_between

__all__ = ["route_between"]
