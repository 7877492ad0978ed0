"""What the rooms and floor-plan listings share: one page (or SSE batch) is one statement.

A listing statement returns `(id, feature)` rows in id order, at most `limit + 1` of them (the
extra one only says that more remain): `feature` is one complete GeoJSON Feature as text built
by PostgreSQL/PostGIS (`ST_AsGeoJSON(geom, 7)`, `to_json`), fetched as bytes, so Python never
decodes or re-encodes it and only joins the features with commas. (Aggregating them in SQL with
`string_agg(... ORDER BY ...)` costs a sort and an aggregate per batch: measured 25-45 % slower.)
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions

from indoor.queries.validity import drawable_sql


def bbox_filter_sql(geometry: str) -> str:
    """The `bbox` filter: the GiST index finds candidates by `&&` (which compares boxes whatever
    their SRID); the exact test runs only on rows that are drawn (queries/validity.py: SRID 4326,
    types GeoJSON carries; ST_Intersects raises an error on mixed SRIDs and on solids, also inside
    a collection: such a row would turn the page into a 500). A row drawn as null is in no box."""
    envelope = "ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326)"
    exact = f"CASE WHEN {drawable_sql(geometry)} THEN ST_Intersects({geometry}, {envelope}) ELSE false END"
    return f"(%(xmin)s::float8 IS NULL OR ({geometry} && {envelope} AND {exact}))"


# Keyset start: below every id (ogc_fid is an integer; bigint literals compare with it on the index).
BEFORE_FIRST = -(2**63)


@dataclass(frozen=True)
class Page:
    """Features in id order: `ids[i]` is the id of `items[i]` (one Feature's JSON bytes)."""

    ids: list[int]
    items: list[bytes]
    more: bool  # rows remain after this page

    @property
    def last_id(self) -> int | None:
        return self.ids[-1] if self.ids else None

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def features(self) -> bytes:
        """b'{"type":"Feature",...},{...}': the inside of a `features` array."""
        return b",".join(self.items)

    def batches(self, size: int) -> list[Page]:
        """This page cut into pages of at most `size` features (at least one page)."""
        if self.count <= size:
            return [self]
        cuts = range(0, self.count, size)
        return [
            Page(self.ids[i : i + size], self.items[i : i + size], self.more or i + size < self.count) for i in cuts
        ]


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


def fetch_page(cur, statement, params: dict, limit: int) -> Page:
    as_bytes(cur)
    cur.execute(statement, params)
    rows = cur.fetchall()
    more = len(rows) > limit
    if more:
        del rows[limit:]
    return Page(ids=[row[0] for row in rows], items=[row[1] for row in rows], more=more)
