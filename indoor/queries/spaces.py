"""What the directions name, read once per floor-plan and rooms version (routing/spaces.py keeps
it in memory): named spaces, building footprints, connector rooms and level display names.

Read as every other statement reads rows another tool wrote (queries/validity.py): geometries
that are empty, not in lon/lat or of a kind with no area are left out; levels beyond +-MAX_LEVEL
(NaN, Infinity) too; a blank name names nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from indoor.queries.validity import EDGES, MAX_LEVEL, VERTICES, in_lonlat_sql

# Floor-plan layers that are no space a person is in (IMDF levels and structures, CAD walls...).
NOT_SPACES = ("wall", "door", "level", "structure", "building", "opening", "window", "column", "fixture")

# Named polygons on each level: the rooms, corridors and areas a route can be in.
NAMED_SPACES = f"""
SELECT lower(trim(layer)), trim(name), level, nullif(trim(building), ''), ST_AsBinary(wkb_geometry)
  FROM base_floor
 WHERE name IS NOT NULL AND trim(name) <> ''
   AND coalesce(lower(trim(layer)), '') NOT IN {NOT_SPACES!r}
   AND ST_GeometryType(wkb_geometry) IN ('ST_Polygon', 'ST_MultiPolygon')
   AND {in_lonlat_sql("wkb_geometry")}
   AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}
"""  # noqa: S608 - constant fragments; no value is interpolated

# Each building's footprint on each level: the box around everything drawn for it there, from
# the geometries' cached boxes (cheap even for 200,000 features, where a convex hull of them all
# took half a second; where two boxes overlap, the smaller one wins). A box that a row another
# tool wrote has spoiled (NaN, projected, off the globe) is made again from the usable rows only.
_DRAWN = """
SELECT trim(building) AS building, level, wkb_geometry FROM base_floor
 WHERE building IS NOT NULL AND trim(building) <> '' AND level BETWEEN -{max} AND {max} {guard}
UNION ALL
SELECT trim(building), level, wkb_geometry FROM room_points
 WHERE building IS NOT NULL AND trim(building) <> '' AND level BETWEEN -{max} AND {max} {guard}
"""
_BOXES = """
SELECT building, level, ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box)
  FROM (SELECT building, level, ST_Extent(wkb_geometry) AS box FROM ({drawn}) drawn GROUP BY building, level) boxes
"""
BUILDING_FOOTPRINTS = _BOXES.format(drawn=_DRAWN.format(max=MAX_LEVEL, guard="AND ST_SRID(wkb_geometry) = 4326"))
# The same for the few (building, level) pairs whose quick box is not usable.
BUILDING_FOOTPRINTS_CAREFULLY = _BOXES.format(
    drawn=_DRAWN.format(max=MAX_LEVEL, guard="AND " + in_lonlat_sql("wkb_geometry"))
).replace(
    "GROUP BY",
    "WHERE (building, level::text) IN (SELECT * FROM unnest(%(buildings)s::text[], %(levels)s::text[])) GROUP BY",
)

# Labelled points of the rooms a connector stands in (an elevator car, a staircase).
CONNECTOR_ROOMS = f"""
SELECT lower(category), trim(text), level, ST_X(wkb_geometry), ST_Y(wkb_geometry)
  FROM room_points
 WHERE lower(category) IN ('elevator', 'stairs', 'steps', 'staircase', 'escalator', 'ramp')
   AND text IS NOT NULL AND trim(text) <> ''
   AND ST_GeometryType(wkb_geometry) = 'ST_Point' AND {in_lonlat_sql("wkb_geometry")}
   AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}
"""  # noqa: S608 - constant fragments; no value is interpolated

LEVEL_NAMES = "SELECT building, level, name FROM indoor_level_names WHERE trim(name) <> ''"

# Every walkable edge's line with the levels of its two ends, as a route's path reads them
# (queries/routing.py PATH_EDGES: the same GeoJSON text, so the same floats): the points the
# directions name are the middles of these lines' pieces (routing/spaces.py, name_graph). Only
# lines that path would draw as they are; a level NULL or beyond +-MAX_LEVEL reads as NULL.
GRAPH_LINES = f"""
SELECT CASE WHEN a.level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} THEN a.level END::float8,
       CASE WHEN b.level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL} THEN b.level END::float8,
       ST_AsGeoJSON(e.wkb_geometry, 7)
  FROM {EDGES} e
  JOIN {VERTICES} a ON a.id = e.source
  JOIN {VERTICES} b ON b.id = e.target
 WHERE {in_lonlat_sql("e.wkb_geometry")} AND ST_GeometryType(e.wkb_geometry) = 'ST_LineString'
"""  # noqa: S608 - constant fragments; no value is interpolated


@dataclass
class SpaceRows:
    spaces: list  # (layer, name, level, building, wkb)
    footprints: list  # (building, level, xmin, ymin, xmax, ymax)
    connector_rooms: list  # (category, name, level, lon, lat)
    level_names: list  # (building, level, name); building '' = every building


def _usable(box) -> bool:
    xmin, ymin, xmax, ymax = box
    return None not in box and -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90


def space_rows(cur) -> SpaceRows:
    """Everything the directions name, in the caller's snapshot."""
    found = []
    for statement in (NAMED_SPACES, BUILDING_FOOTPRINTS, CONNECTOR_ROOMS, LEVEL_NAMES):
        cur.execute(statement)
        found.append(cur.fetchall())
    spoiled = [row for row in found[1] if not _usable(row[2:])]
    if spoiled:  # NaN compares false both ways: such a box is not usable either
        cur.execute(
            BUILDING_FOOTPRINTS_CAREFULLY,
            {"buildings": [row[0] for row in spoiled], "levels": [str(row[1]) for row in spoiled]},
        )
        found[1] = [row for row in found[1] if _usable(row[2:])] + [row for row in cur.fetchall() if _usable(row[2:])]
    return SpaceRows(*found)


def graph_lines(cur, batch: int = 5_000):
    """GRAPH_LINES in batches of rows (from_level, to_level, GeoJSON text), read in the caller's
    transaction through a named cursor: a campus of 300,000 edges never sits in memory whole, and
    each batch is parsed in a few ms (the GIL is held meanwhile)."""
    with cur.connection.cursor("indoor_graph_lines") as named:
        named.itersize = batch
        named.execute(GRAPH_LINES)
        while rows := named.fetchmany(batch):
            yield rows
