"""Rows other tools wrote: SQL fragments that read them defensively.

QGIS, ogr2ogr and people's scripts write the contract tables (DATA.md): a geometry may be empty,
hold NaN or Infinity coordinates, lie outside lon/lat (projected coordinates labelled 4326) or
carry another SRID; a level may be NULL, NaN or +-Infinity; a cost NULL, NaN or +-Infinity.
Every statement that reads them goes through these fragments, so no such row turns an answer into
a 5xx or into text that is not JSON (PostGIS and PostgreSQL write the tokens NaN and Infinity).
They are constant SQL text, composed into the statements when the modules load; no value is
ever formatted into them. `indoor check-graph` reports such rows (queries/graph.py).
"""

from __future__ import annotations

from typing import NamedTuple

# -- geometries and levels -------------------------------------------------------------------
#
# A feature is still served (its id and properties are true), but what cannot be drawn or named
# is null: PostGIS would write `"coordinates":[]` or the tokens NaN/Infinity. The checks run on
# the row being written out, so the pages keep their index plans.

# The largest |level| the API serves as a level (the `level` parameter's range).
MAX_LEVEL = 1000


# What GeoJSON (RFC 7946) and MVT can carry: the six simple types, and a collection of them (not
# nested: RFC 7946 3.1.8; MVT has no collections, a tile leaves one out). Curves (QGIS draws arcs)
# are carried as the lines PostGIS strokes them into. Surfaces, TINs and triangles (3D types) have
# no counterpart: null, like a geometry of another SRID or outside lon/lat.
SIMPLE_TYPES = ("ST_Point", "ST_LineString", "ST_Polygon", "ST_MultiPoint", "ST_MultiLineString", "ST_MultiPolygon")
CURVE_TYPES = ("ST_CircularString", "ST_CompoundCurve", "ST_CurvePolygon", "ST_MultiCurve", "ST_MultiSurface")


def _names(types: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in types)


def drawable_sql(geometry: str) -> str:
    """SQL: `geometry` is SRID 4326, its box within lon/lat (`@`: from the box stored with it,
    cheap; NaN coordinates pass it, see geojson_sql) and of a type GeoJSON can carry once curves
    are stroked. Types are looked at first (CASE), so GEOS never sees a solid; the members of a
    collection only for a collection."""
    return (
        f"(CASE WHEN ST_GeometryType({geometry}) IN ({_names(SIMPLE_TYPES + CURVE_TYPES)}) THEN true"  # noqa: S608
        f" WHEN ST_GeometryType({geometry}) = 'ST_GeometryCollection' THEN NOT EXISTS ("
        f"SELECT 1 FROM generate_series(1, ST_NumGeometries({geometry})) AS member(n)"
        f" WHERE ST_GeometryType(ST_GeometryN({geometry}, member.n)) NOT IN ({_names(SIMPLE_TYPES)}))"
        f" ELSE false END"
        f" AND ST_SRID({geometry}) = 4326 AND {geometry} @ ST_MakeEnvelope(-180, -90, 180, 90, 4326))"
    )


def stroked_sql(geometry: str) -> str:
    """SQL: a drawable `geometry` with its curves stroked into lines (GEOS, ST_AsGeoJSON and
    ST_AsMVTGeom know no curves)."""
    return (
        f"CASE WHEN ST_GeometryType({geometry}) IN ({_names(CURVE_TYPES)}) THEN ST_CurveToLine({geometry})"
        f" ELSE {geometry} END"
    )


def has_no_nan_sql(text: str) -> str:
    """SQL: ST_AsGeoJSON text `text` holds no NaN or Infinity token (an upper-case N or I occurs
    in its output only there: the simple types' names and the keys have neither)."""
    return f"({text} !~ '[NI]')"


def geojson_sql(geometry: str, counter_clockwise: bool = False) -> str:
    """SQL for the GeoJSON text of `geometry` (polygons reoriented with `counter_clockwise`), or
    'null' when it is not drawable (drawable_sql) or has a NaN or Infinity coordinate (`@` lets
    NaN through; the output is searched: the unanchored search costs little beside ST_AsGeoJSON).
    One expression, so PostgreSQL evaluates it after the page's LIMIT."""
    drawn = stroked_sql(geometry)
    if counter_clockwise:
        # Polygons only: PostGIS 3.3's ST_ForcePolygonCCW also reverses a LineString.
        drawn = f"CASE WHEN ST_Dimension({geometry}) = 2 THEN ST_ForcePolygonCCW({drawn}) ELSE {drawn} END"
    return (
        f"CASE WHEN {drawable_sql(geometry)}"
        f" THEN regexp_replace(ST_AsGeoJSON({drawn}, 7), '^.*[NI].*$', 'null') ELSE 'null' END"
    )


def level_float_sql(level: str) -> str:
    """SQL: a numeric level as float8 (vector tiles have no decimals), NULL when it is not a level
    (NULL, NaN, +-Infinity, beyond a double: a float8 cast of 1e3000 fails), as level_json_sql.
    A level too small for a double (1e-3000) is 0."""
    return (
        f"CASE WHEN {level} > -1e300 AND {level} < 1e300"
        f" THEN CASE WHEN abs({level}) >= 1e-300 THEN {level}::float8 ELSE 0 END END"
    )


def level_json_sql(level: str) -> str:
    """SQL for a level as JSON: the number when a double can hold it, else null (NULL, NaN,
    +-Infinity, 1e3000: JSON readers take numbers as doubles)."""
    finite = f"{level} > -1e300 AND {level} < 1e300"
    return f"CASE WHEN {finite} THEN to_json(trim_scale({level}))::text ELSE 'null' END"


def json_string_sql(column: str) -> str:
    """SQL for a text property as JSON: a string (escaped by to_json), or null."""
    return f"coalesce(to_json({column})::text, 'null')"


def in_lonlat_sql(geometry: str) -> str:
    """SQL: `geometry` is a non-empty SRID 4326 geometry whose box has finite lon/lat corners
    (NaN compares above every number in PostgreSQL, so each bound is tested both ways)."""
    return (
        f"(ST_SRID({geometry}) = 4326 AND NOT ST_IsEmpty({geometry})"
        f" AND ST_XMin({geometry}) BETWEEN -180 AND 180 AND ST_XMax({geometry}) BETWEEN -180 AND 180"
        f" AND ST_YMin({geometry}) BETWEEN -90 AND 90 AND ST_YMax({geometry}) BETWEEN -90 AND 90)"
    )


# -- costs --------------------------------------------------------------------------------------
#
# An edge is open in a direction when its cost that way is a finite number >= 0. NULL, NaN and
# +Infinity are closed: pgRouting fails on NULL, takes NaN and Infinity as costs (a route of
# "distance_m": Infinity), and `NaN >= 0` is true in PostgreSQL. Every search, the snapping and
# the overlay see costs through these two.


def open_cost_sql(cost: str) -> str:
    """SQL: `cost` when the edge is open that way, else -1 (closed, as pgRouting reads it)."""
    return f"CASE WHEN {cost} >= 0 AND {cost} < 'Infinity' THEN {cost} ELSE -1 END"


def is_open_sql(edge: str) -> str:
    """SQL: the edge is open at least one way."""
    return (
        f"(({edge}.cost >= 0 AND {edge}.cost < 'Infinity')"
        f" OR ({edge}.reverse_cost >= 0 AND {edge}.reverse_cost < 'Infinity'))"
    )


# -- keys -----------------------------------------------------------------------------------------
#
# A table created without the contract's constraints (ogr2ogr, QGIS, a script) may hold rows with a
# NULL key or two rows with one key. Such a row cannot be named (NULL) or is ambiguous (twice):
# every statement reads the tables through these relations, which leave out rows with a NULL key
# and, of rows sharing a key, keep the first one stored (the lowest ctid: the one written first,
# until VACUUM FULL or an UPDATE moves rows). Whether the table has a unique index on its key is
# looked up once per statement (an InitPlan over the catalog): with one, as init-db makes, no row
# is ever compared with another, so a healthy table costs one boolean test per row.


def _keyed_sql(table: str, key: str) -> str:
    """SQL (one InitPlan): `table` has a unique, non-partial index on `key` alone.

    The index's key column is named by pg_get_indexdef (a column's name, or an expression's text
    for an expression index, which is never a bare name): planning a join of pg_index with
    pg_attribute instead cost ~0.09 ms in every listing statement, a sixth of its planning.
    `key` is a lower-case name that needs no quotes, so it is written as it is compared."""
    if not (key.isidentifier() and key == key.lower()):
        raise ValueError(f"key {key!r} would be quoted by pg_get_indexdef")
    return (
        f"(SELECT EXISTS (SELECT 1 FROM pg_index i"  # noqa: S608 - constant names
        f" WHERE i.indrelid = '{table}'::regclass AND i.indisunique AND i.indnkeyatts = 1"
        f" AND i.indpred IS NULL AND pg_get_indexdef(i.indexrelid, 1, true) = '{key}'))"
    )


def _first_rows_sql(table: str, key: str, not_null: tuple[str, ...]) -> str:
    present = " AND ".join(f"k.{column} IS NOT NULL" for column in (key, *not_null))
    return (
        f"(SELECT k.* FROM {table} k WHERE {present}"  # noqa: S608 - constant names
        f" AND ({_keyed_sql(table, key)}"
        f" OR NOT EXISTS (SELECT 1 FROM {table} d WHERE d.{key} = k.{key} AND d.ctid < k.ctid)))"
    )


# The usable rows of each contract table, as a relation to read FROM (give it an alias).
EDGES = _first_rows_sql("nav_edges_final", "id", ("source", "target", "kind"))
VERTICES = _first_rows_sql("nav_edges_work_vertices_pgr", "id", ())
ROOMS = _first_rows_sql("room_points", "ogc_fid", ())
FLOOR = _first_rows_sql("base_floor", "ogc_fid", ())


# -- decided once, when a row is written ------------------------------------------------------------
#
# Nearly every row is plain: a simple type in lon/lat with finite coordinates, a level a double
# holds, and text properties JSON writes as they are (no quote, backslash or control character),
# for which ST_AsGeoJSON, the level's text and the text between quotes are exactly what the
# guarded expressions above and to_json would write. The listings (rooms, floor plan) must not
# pay the guards on every read of every such row (to_json alone was ~40% of a page's execution),
# so init-db's statement triggers write the ids of the few rows that are not plain to
# indoor_unusable_rows when the rows are written (schema.UNUSABLE); a listing reads a row through
# the guards only when its id is listed there (one hashed look-up per row), or when the table's
# trigger is missing or disabled (a table another tool dropped and made again: every row is then
# read through the guards until init-db runs again). `indoor check-graph` compares the list with
# the table.


class Tracked(NamedTuple):
    """A table whose rows are decided when written."""

    trigger: str  # the triggers' name (with TRIGGER_SUFFIXES) and their function's (+ "_rows")
    key: str
    geometry: str
    level: str
    texts: tuple[str, ...]  # the text properties a listing writes
    counter_clockwise: bool = False  # a listing writes its polygons counter-clockwise (ccw_sql)


# The triggers are named for what they decide. A trigger of an earlier release decided less (not
# the texts): the listings only trust triggers of these names, and init-db drops RETIRED_TRIGGERS.
TRACKED = {
    "room_points": Tracked("indoor_rooms_plain", "ogc_fid", "wkb_geometry", "level", ("text", "building", "category")),
    "base_floor": Tracked(
        "indoor_floor_plain", "ogc_fid", "wkb_geometry", "level", ("layer", "name", "building"), counter_clockwise=True
    ),
}
RETIRED_TRIGGERS = {"room_points": "indoor_rooms_unusable", "base_floor": "indoor_floor_unusable"}


# One trigger per kind of write (transition tables differ): INSERT, UPDATE, DELETE, TRUNCATE.
TRIGGER_SUFFIXES = ("", "_update", "_delete", "_truncate")

# A character to_json escapes in a string: a quote, a backslash, a control character (the class
# also takes DEL and, by locale, other control characters: those rows only take the guarded path).
_ESCAPED = "'[\"\\\\[:cntrl:]]'"


def plain_text_sql(column: str) -> str:
    """SQL: `column` is written by plain_string_sql as to_json writes it: NULL, or text (or
    varchar) holding nothing JSON escapes."""
    return (
        f"({column} IS NULL OR (pg_typeof({column}) IN ('text'::regtype, 'character varying'::regtype)"
        f" AND {column}::text !~ {_ESCAPED}))"
    )


def plain_string_sql(table: str, column: str) -> str:
    """SQL: a plain row's text property as JSON (what to_json writes for it, without its cost).
    Only for a column `table`'s triggers decide (TRACKED texts): any other could hold a quote."""
    if column not in TRACKED[table].texts:
        raise ValueError(f"{table}.{column} is written between plain quotes but not decided by its triggers")
    return f"coalesce('\"' || {column} || '\"', 'null')"


def ccw_sql(geometry: str) -> str:
    """SQL: a plain row's geometry with its polygons counter-clockwise (RFC 7946). The test
    costs a quarter of reorienting every polygon (a copy each) and leaves lines alone (PostGIS
    3.3's ST_ForcePolygonCCW reverses a LineString). Where it and ST_ForcePolygonCCW disagree (a
    ring of no area), the row is not plain (plain_sql), so both paths draw the same."""
    return f"CASE WHEN ST_IsPolygonCCW({geometry}) THEN {geometry} ELSE ST_ForcePolygonCCW({geometry}) END"


def plain_sql(geometry: str, level: str, texts: tuple[str, ...] = (), counter_clockwise: bool = False) -> str:
    """SQL: true when the plain expressions (ST_AsGeoJSON, of ccw_sql with `counter_clockwise`;
    the level's text; plain_string_sql of each of `texts`) write what the guarded ones write;
    NULL or false otherwise (test it with IS TRUE)."""
    oriented = ""
    if counter_clockwise:
        oriented = (
            f" AND (ST_GeometryType({geometry}) NOT IN ('ST_Polygon', 'ST_MultiPolygon')"
            f" OR ST_AsBinary({ccw_sql(geometry)}) = ST_AsBinary(ST_ForcePolygonCCW({geometry})))"
        )
    return (
        f"(ST_GeometryType({geometry}) IN ({_names(SIMPLE_TYPES)}) AND ST_SRID({geometry}) = 4326"
        f" AND {geometry} @ ST_MakeEnvelope(-180, -90, 180, 90, 4326)"
        f" AND {has_no_nan_sql(f'ST_AsGeoJSON({geometry}, 7)')}"
        f" AND {level} > -1e300 AND {level} < 1e300"
        + oriented
        + "".join(f" AND {plain_text_sql(text)}" for text in texts)
        + ")"
    )


def careful_sql(table: str, key: str) -> str:
    """SQL: the row of `table` keyed `key` must be read through the guards (its id is listed as not
    plain, or the table's trigger is not there to list it). Both sub-selects are uncorrelated: one
    InitPlan and one hashed SubPlan per statement."""
    trigger = TRACKED[table][0]
    names = ", ".join(f"'{trigger}{suffix}'" for suffix in TRIGGER_SUFFIXES)
    tracked = (
        f"(SELECT count(*) = {len(TRIGGER_SUFFIXES)} FROM pg_trigger"  # noqa: S608 - constant names
        f" WHERE tgrelid = '{table}'::regclass AND tgname IN ({names}) AND tgenabled <> 'D')"
    )
    listed = f"{key} IN (SELECT u.id FROM indoor_unusable_rows u WHERE u.tbl = '{table}')"  # noqa: S608
    return f"(NOT {tracked} OR {listed})"
