"""Rooms (`room_points`) and levels: GeoJSON built by PostGIS, one statement per page.

A room Feature: {"type":"Feature","id":17,"geometry":{"type":"Point",...},
"properties":{"name":"E01.14","level":0,"building":null,"category":"office"}}. Coordinates have at most 7 decimals;
`trim_scale` renders a numeric level 0.0 as 0 and 0.50 as 0.5.
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
    like_pattern,
)
from indoor.queries.validity import (
    FLOOR,
    MAX_LEVEL,
    ROOMS,
    careful_sql,
    geojson_sql,
    in_lonlat_sql,
    json_string_sql,
    level_json_sql,
    plain_string_sql,
)


@dataclass(frozen=True)
class RoomFilters:
    level: Decimal | None = None
    building: str | None = None
    bbox: tuple | None = None  # (minlon, minlat, maxlon, maxlat)
    q: str | None = None  # case-insensitive substring of the label

    def as_dict(self) -> dict:
        return asdict(self)


# The filters are `(param IS NULL OR ...)`: psycopg2 sends literals, so PostgreSQL folds the
# unused ones away at plan time and plans each request for the filters it really has
# (level -> (level, ogc_fid) btree, q -> trigram GIN on lower(text), bbox -> GiST).
# LIMIT n + 1: the extra row only tells that more remain.
# One room as a GeoJSON Feature (a geometry or level another tool left unusable is null).
# A row init-db's triggers listed as not plain is read through the guards (queries/validity.py).
def _feature(geometry: str, level: str, string: Callable[[str], str] = json_string_sql) -> str:
    return f"""'{{"type":"Feature","id":' || ogc_fid
       || ',"geometry":' || {geometry}
       || ',"properties":{{"name":' || {string("text")}
       || ',"level":' || {level}
       || ',"building":' || {string("building")}
       || ',"category":' || {string("category")} || '}}}}'"""


ROOM_FEATURE = f"""CASE WHEN {careful_sql("room_points", "ogc_fid")}
       THEN {_feature(geojson_sql("wkb_geometry"), level_json_sql("level"))}
       ELSE {_feature("ST_AsGeoJSON(wkb_geometry, 7)", "trim_scale(level)::text", partial(plain_string_sql, "room_points"))} END"""

ROOMS_PAGE = f"""
SELECT ogc_fid, {ROOM_FEATURE}
  FROM {ROOMS} room_points
 WHERE ogc_fid > %(after)s
   AND (%(level)s::numeric IS NULL OR level = %(level)s::numeric)
   AND (%(building)s::text IS NULL OR building = %(building)s::text)
   AND (%(like)s::text IS NULL OR lower(text) LIKE lower(%(like)s::text))
   AND {bbox_filter_sql("wkb_geometry")}
 ORDER BY ogc_fid
 LIMIT %(limit)s + 1
"""  # noqa: S608 - constant fragments; values are parameters

ROOM = f"""
SELECT {ROOM_FEATURE}
  FROM {ROOMS} room_points
 WHERE ogc_fid = %(id)s
"""  # noqa: S608 - constant fragments; values are parameters

# Levels known from the rooms and the floor plan: how many rooms, the extent of both, the name. Only
# levels a client can ask for are levels (finite, within the `level` parameter's range: NULL, NaN
# and Infinity are not). The extent takes rows in SRID 4326 whose box lies within lon/lat (`@`,
# from the box stored with each geometry: cheap); a NaN coordinate can still slip through
# (NaN boxes compare as inside), so an extent that is not within lon/lat is null.
LEVELS = f"""
WITH things AS (
    SELECT level, 1 AS is_room, wkb_geometry
      FROM {ROOMS} room_points
     WHERE (%(building)s::text IS NULL OR building = %(building)s::text)
       AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}
    UNION ALL
    SELECT level, 0, wkb_geometry
      FROM {FLOOR} base_floor
     WHERE (%(building)s::text IS NULL OR building = %(building)s::text)
       AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}
), per_level AS (
    SELECT level, sum(is_room) AS rooms,
           ST_Extent(wkb_geometry) FILTER (
               WHERE ST_SRID(wkb_geometry) = 4326 AND wkb_geometry @ ST_MakeEnvelope(-180, -90, 180, 90, 4326)
           ) AS extent
      FROM things
     GROUP BY level
), named AS (
    -- The display name (indoor_level_names): the building's; without one, the name every
    -- building that names this level agrees on, else null.
    SELECT p.*, (SELECT CASE WHEN count(DISTINCT n.name) = 1 THEN min(n.name) END
                   FROM indoor_level_names n
                  WHERE n.level = p.level
                    AND (%(building)s::text IS NULL OR n.building = %(building)s::text)) AS name
      FROM per_level p
)
SELECT coalesce(json_agg(json_build_object(
           'level', trim_scale(level),
           'name', name,
           'rooms', rooms,
           'bbox', CASE WHEN {in_lonlat_sql("ST_SetSRID(extent::geometry, 4326)")} THEN json_build_array(
                       trim_scale(round(ST_XMin(extent)::numeric, 7)), trim_scale(round(ST_YMin(extent)::numeric, 7)),
                       trim_scale(round(ST_XMax(extent)::numeric, 7)), trim_scale(round(ST_YMax(extent)::numeric, 7)))
                   END)
           ORDER BY level), '[]')::text
  FROM named
"""  # noqa: S608 - constant fragments; values are parameters


def page_params(filters: RoomFilters, after: int | None, limit: int) -> dict:
    return {
        "after": BEFORE_FIRST if after is None else after,
        "limit": limit,
        "level": filters.level,
        "building": filters.building,
        "like": like_pattern(filters.q),
        **bbox_params(filters.bbox),
    }


def rooms_page(cur, filters: RoomFilters, after: int | None, limit: int) -> Page:
    """Up to `limit` rooms after id `after` (None: from the first), in id order."""
    return fetch_page(cur, ROOMS_PAGE, page_params(filters, after, limit), limit)


def room_feature(cur, room_id: int) -> bytes | None:
    as_bytes(cur)
    cur.execute(ROOM, {"id": room_id})
    row = cur.fetchone()
    return bytes(row[0]) if row else None


# What the levels answer depends on: the rooms' and the floor plan's versions (bumped by triggers
# on every edit) and the level names (a small table of ours, read whole). Where a version trigger
# is missing or disabled (a table another tool dropped and made again), the stamp never repeats:
# edits would not show in the versions, so the answer is computed every time until init-db runs.
LEVELS_STAMP = """
SELECT coalesce((SELECT array_agg(name || ':' || version || ':' || changed_at ORDER BY name)
                   FROM indoor_versions WHERE name IN ('rooms', 'floor'))::text, '')
       || coalesce((SELECT array_agg(building || ':' || level || ':' || name ORDER BY building, level)
                      FROM indoor_level_names)::text, '')
       || CASE WHEN (SELECT count(*) FROM pg_trigger
                      WHERE tgenabled <> 'D'
                        AND ((tgrelid = 'room_points'::regclass AND tgname = 'indoor_rooms_version')
                          OR (tgrelid = 'base_floor'::regclass AND tgname = 'indoor_floor_version'))) = 2
               THEN '' ELSE clock_timestamp()::text END
"""


def levels_stamp(cur) -> str:
    """A text that changes whenever the levels answer may."""
    cur.execute(LEVELS_STAMP)
    return cur.fetchone()[0]


def levels(cur, building: str | None = None) -> bytes:
    """The JSON array of levels, lowest first."""
    as_bytes(cur)
    cur.execute(LEVELS, {"building": building})
    return bytes(cur.fetchone()[0])


# The room categories present, most rooms first: each as a route's `category:NAME` finds it
# (lower(category) on both sides, names 1 to 64 characters with no surrounding blanks).
CATEGORIES = f"""
SELECT lower(category), count(*)
  FROM {ROOMS} room_points
 WHERE (%(building)s::text IS NULL OR building = %(building)s::text)
   AND category IS NOT NULL
   AND category = btrim(category)
   AND char_length(category) BETWEEN 1 AND 64
 GROUP BY lower(category)
 ORDER BY count(*) DESC, lower(category)
"""  # noqa: S608 - constant fragments; values are parameters


def categories(cur, building: str | None = None) -> list[dict]:
    """[{"name": "toilets", "rooms": 30}, ...]; a name another tool wrote with control characters
    cannot be asked for in a route, so it is left out."""
    cur.execute(CATEGORIES, {"building": building})
    return [{"name": name, "rooms": count} for name, count in cur.fetchall() if name.isprintable()]
