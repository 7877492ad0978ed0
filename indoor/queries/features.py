"""What the rooms and floor-plan listings share: one page (or SSE batch) is one statement.

Each listing statement returns one row `(last_id, count, features, more)`: `features` is the
comma-separated Feature objects of the page as text built by PostgreSQL/PostGIS
(`ST_AsGeoJSON(geom, 7)`, `to_json`), in id order; `more` says whether rows remain after it.
It is fetched as bytes (no decoding into Python strings) so that the caller only frames it.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions

# Keyset start: below every id (ogc_fid is an integer; bigint literals compare with it on the index).
BEFORE_FIRST = -(2**63)


@dataclass(frozen=True)
class Page:
    last_id: int | None  # id of the last feature on the page; None when the page is empty
    count: int
    features: bytes  # b'{"type":"Feature",...},{...}' (empty when count is 0)
    more: bool  # rows remain after this page


def like_pattern(q: str | None) -> str | None:
    """A case-insensitive substring as a LIKE pattern: %, _ and \\ in `q` match themselves."""
    if q is None:
        return None
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def bbox_params(bbox: tuple | None) -> dict:
    xmin, ymin, xmax, ymax = bbox if bbox is not None else (None, None, None, None)
    return {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}


def as_bytes(cur) -> None:
    """Return text columns of this cursor as bytes: the body goes to the socket as it came."""
    psycopg2.extensions.register_type(psycopg2.extensions.BYTES, cur)


def fetch_page(cur, statement, params: dict) -> Page:
    as_bytes(cur)
    cur.execute(statement, params)
    last_id, count, features, more = cur.fetchone()
    return Page(last_id=last_id, count=int(count), features=bytes(features or b""), more=bool(more))
