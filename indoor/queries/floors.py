"""The drawn floor plan (`base_floor`): GeoJSON built by PostGIS, one statement per page.

A base-floor Feature: {"type":"Feature","id":3,"geometry":{...},
"properties":{"layer":"wall","name":null,"level":0,"building":"A"}}. RFC 7946 wants polygon
exterior rings counter-clockwise (holes clockwise): `ST_ForcePolygonCCW` does both and leaves
other geometry types alone. Coordinates have at most 7 decimals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import partial

from indoor.queries.features import (
    BEFORE_FIRST,
    Page,
    as_bytes,
    bbox_filter_sql,
    bbox_params,
    fetch_page,
)
from indoor.queries.validity import (
    FLOOR,
    careful_sql,
    ccw_sql,
    geojson_sql,
    json_string_sql,
    level_json_sql,
    plain_string_sql,
)


@dataclass(frozen=True)
class FloorFilters:
    level: Decimal | None = None
    building: str | None = None
    bbox: tuple | None = None  # (minlon, minlat, maxlon, maxlat)
    layer: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _feature(geometry: str, level: str, string: Callable[[str], str] = json_string_sql) -> str:
    return f"""'{{"type":"Feature","id":' || ogc_fid
       || ',"geometry":' || {geometry}
       || ',"properties":{{"layer":' || {string("layer")}
       || ',"name":' || {string("name")}
       || ',"level":' || {level}
       || ',"building":' || {string("building")} || '}}}}'"""


# One floor-plan feature as GeoJSON: a row init-db's triggers listed as not plain is read through
# the guards (a geometry or level another tool left unusable is null, queries/validity.py); every
# other row with the plain expressions (polygons counter-clockwise; a line keeps its direction;
# the level's text, the texts between quotes).
FLOOR_FEATURE = f"""CASE WHEN {careful_sql("base_floor", "ogc_fid")}
       THEN {_feature(geojson_sql("wkb_geometry", counter_clockwise=True), level_json_sql("level"))}
       ELSE {
    _feature(
        f"ST_AsGeoJSON({ccw_sql('wkb_geometry')}, 7)",
        "trim_scale(level)::text",
        partial(plain_string_sql, "base_floor"),
    )
} END"""

# Same shape as rooms.ROOMS_PAGE: unused filters fold away at plan time; LIMIT n + 1.
# A geometry or level another tool left unusable is null (queries/features.py).
BASE_FLOOR_PAGE = f"""
SELECT ogc_fid, {FLOOR_FEATURE}
  FROM {FLOOR} base_floor
 WHERE ogc_fid > %(after)s
   AND (%(level)s::numeric IS NULL OR level = %(level)s::numeric)
   AND (%(building)s::text IS NULL OR building = %(building)s::text)
   AND (%(layer)s::text IS NULL OR layer = %(layer)s::text)
   AND {bbox_filter_sql("wkb_geometry")}
 ORDER BY ogc_fid
 LIMIT %(limit)s + 1
"""  # noqa: S608 - constant fragments; values are parameters

# One feature by id, built like the page's.
BASE_FLOOR = f"""
SELECT {FLOOR_FEATURE}
  FROM {FLOOR} base_floor
 WHERE ogc_fid = %(id)s
"""  # noqa: S608 - constant fragments; values are parameters


def page_params(filters: FloorFilters, after: int | None, limit: int) -> dict:
    return {
        "after": BEFORE_FIRST if after is None else after,
        "limit": limit,
        "level": filters.level,
        "building": filters.building,
        "layer": filters.layer,
        **bbox_params(filters.bbox),
    }


def base_floor_page(cur, filters: FloorFilters, after: int | None, limit: int) -> Page:
    """Up to `limit` floor-plan features after id `after` (None: from the first), in id order."""
    return fetch_page(cur, BASE_FLOOR_PAGE, page_params(filters, after, limit), limit)


def base_floor_feature(cur, ident: int) -> bytes | None:
    as_bytes(cur)
    cur.execute(BASE_FLOOR, {"id": ident})
    row = cur.fetchone()
    return bytes(row[0]) if row else None
