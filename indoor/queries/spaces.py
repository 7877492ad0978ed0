"""What the directions name, read once per floor-plan and rooms version (routing/spaces.py keeps
it in memory): named spaces, building footprints, connector rooms and level display names.

Read as every other statement reads rows another tool wrote (queries/validity.py): geometries
that are empty, not in lon/lat or of a kind with no area are left out; levels beyond +-MAX_LEVEL
(NaN, Infinity) too; a blank name names nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from indoor.queries.validity import MAX_LEVEL, in_lonlat_sql

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

# Each building's footprint on each level: the convex hull of everything drawn for it there.
BUILDING_FOOTPRINTS = f"""
SELECT building, level, ST_AsBinary(ST_ConvexHull(ST_Collect(wkb_geometry)))
  FROM (SELECT trim(building) AS building, level, wkb_geometry
          FROM base_floor
         WHERE building IS NOT NULL AND trim(building) <> ''
           AND ST_GeometryType(wkb_geometry) IN ('ST_Polygon', 'ST_MultiPolygon', 'ST_LineString',
                                                 'ST_MultiLineString', 'ST_Point', 'ST_MultiPoint')
           AND {in_lonlat_sql("wkb_geometry")}
           AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}
        UNION ALL
        SELECT trim(building), level, wkb_geometry
          FROM room_points
         WHERE building IS NOT NULL AND trim(building) <> ''
           AND ST_GeometryType(wkb_geometry) = 'ST_Point' AND {in_lonlat_sql("wkb_geometry")}
           AND level BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}) drawn
 GROUP BY building, level
"""  # noqa: S608 - constant fragments; no value is interpolated

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


@dataclass
class SpaceRows:
    spaces: list  # (layer, name, level, building, wkb)
    footprints: list  # (building, level, wkb)
    connector_rooms: list  # (category, name, level, lon, lat)
    level_names: list  # (building, level, name); building '' = every building


def space_rows(cur) -> SpaceRows:
    """Everything the directions name, in the caller's snapshot."""
    found = []
    for statement in (NAMED_SPACES, BUILDING_FOOTPRINTS, CONNECTOR_ROOMS, LEVEL_NAMES):
        cur.execute(statement)
        found.append(cur.fetchall())
    return SpaceRows(*found)
