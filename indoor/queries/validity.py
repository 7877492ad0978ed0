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

# -- geometries and levels -------------------------------------------------------------------
#
# A feature is still served (its id and properties are true), but what cannot be drawn or named
# is null: PostGIS would write `"coordinates":[]` or the tokens NaN/Infinity. The checks run on
# the row being written out, so the pages keep their index plans.

# The largest |level| the API serves as a level (the `level` parameter's range).
MAX_LEVEL = 1000


def geojson_sql(geometry: str, counter_clockwise: bool = False) -> str:
    """SQL for the GeoJSON text of `geometry` (polygons reoriented with `counter_clockwise`), or
    'null' when it has no usable position: of another SRID, empty or outside lon/lat (`@`: its
    box within the world's), a type GeoJSON has none for (a polyhedral surface), or with a NaN
    or Infinity coordinate (`@` lets NaN through; an upper-case N or I occurs in ST_AsGeoJSON's
    output only there: type names and keys have neither). Curves (QGIS draws arcs) are drawn as
    lines: ST_AsGeoJSON fails on them. One expression, so PostgreSQL evaluates it after the
    page's LIMIT; the unanchored search costs little beside ST_AsGeoJSON (an anchored
    `^[^NI]*$` cost as much)."""
    drawn = f"CASE WHEN ST_HasArc({geometry}) THEN ST_CurveToLine({geometry}) ELSE {geometry} END"
    if counter_clockwise:
        # Polygons only: PostGIS 3.3's ST_ForcePolygonCCW also reverses a LineString.
        drawn = f"CASE WHEN ST_Dimension({geometry}) = 2 THEN ST_ForcePolygonCCW({drawn}) ELSE {drawn} END"
    return (
        f"CASE WHEN ST_SRID({geometry}) = 4326 AND {geometry} @ ST_MakeEnvelope(-180, -90, 180, 90, 4326)"
        f" AND ST_GeometryType({geometry}) <> 'ST_PolyhedralSurface'"
        f" THEN regexp_replace(ST_AsGeoJSON({drawn}, 7), '^.*[NI].*$', 'null') ELSE 'null' END"
    )


def level_json_sql(level: str) -> str:
    """SQL for a level as JSON: the number when it is finite, else null (NULL, NaN, +-Infinity)."""
    finite = f"{level} > '-Infinity' AND {level} < 'Infinity'"
    return f"CASE WHEN {finite} THEN to_json(trim_scale({level}))::text ELSE 'null' END"


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
