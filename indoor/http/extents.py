"""The extents and row counts of the tables we serve, kept per worker until the data changes.

The version triggers bump `indoor_versions` on every edit of the four tables, so the versions
(one indexed read) say whether the last computed extents still hold; only then are the tables
scanned again. OGC collection metadata and `numberMatched`, and TileJSON's bounds, use them.
"""

from __future__ import annotations

from flask import current_app

from indoor.queries import ogc, versions

_KEY = "indoor.extents"


def current(cur) -> tuple[dict, dict]:
    """(versions as queries.versions.versions gives them, {collection id: (count, bbox or None)})."""
    found = versions.versions(cur)
    key = (found["rooms_key"], found["floor_key"], found["graph_key"])
    memo = current_app.extensions.get(_KEY)
    if memo is None or memo[0] != key:
        memo = (key, ogc.extents(cur))
        current_app.extensions[_KEY] = memo
    return found, memo[1]


def union(boxes) -> tuple | None:
    """The bbox covering every non-None bbox of `boxes`, or None."""
    boxes = [box for box in boxes if box is not None]
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
