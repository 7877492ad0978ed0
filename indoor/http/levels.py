"""The levels answer (`GET /api/levels/`), kept per worker until the data changes.

It counts every room and measures every level's extent over both tables: 300-500 ms on a campus
of 100,000 rooms and 200,000 floor-plan features, for the first request of every map page. The
version triggers bump `indoor_versions` on every edit of rooms and floor plan, and the level
names are one small table read whole, so one round trip says whether the kept answer still holds.
"""

from __future__ import annotations

from flask import current_app

from indoor.queries import rooms

_KEY = "indoor.levels"
_KEPT = 64  # answers kept per worker (one per `building` asked for): a bound, not a cache policy


def levels_body(cur, building: str | None) -> bytes:
    """The JSON array of levels for `building` (None: all), as rooms.levels writes it."""
    stamp = rooms.levels_stamp(cur)
    kept: dict = current_app.extensions.setdefault(_KEY, {})
    found = kept.get(building)
    if found is not None and found[0] == stamp:
        return found[1]
    body = rooms.levels(cur, building)
    if len(kept) >= _KEPT:
        kept.clear()
    kept[building] = (stamp, body)
    return body
