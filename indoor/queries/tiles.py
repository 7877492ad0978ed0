"""Mapbox Vector Tiles built by PostGIS (`ST_AsMVT`): one statement per tile, three layers.

- `rooms`: the room points; `id`, `name`, `level`, `building`, `category`.
- `floor`: the drawn floor plan; `id`, `layer`, `name`, `level`, `building`.
- `network`: the route network's edges; `id`, `kind`, `level` (of its source vertex), `to_level`.

Every feature also carries its id as the MVT feature id. Rows are found with the GiST indexes on
the lon/lat geometries (a tile's envelope, with its buffer, back in EPSG:4326), projected to Web
Mercator, simplified by half a screen pixel of the zoom (a tile is drawn 512 px wide), and clipped
with a buffer of 64/4096 so lines and polygons join across tile edges. Levels are floats in the
tile (MVT has no decimal type): 0.5 stays 0.5. The layers are MATERIALIZED: a pushed-down
`geom IS NOT NULL` would otherwise clip every geometry twice (measured: a z16 tile 1.7x slower).

Rows are read as every listing reads them (queries/validity.py): a row whose geometry is not
drawable (another SRID or SRID 0, outside lon/lat, a surface, TIN, triangle or nested collection,
a NaN or Infinity coordinate) is left out of the tile; curves are stroked into lines; a level no
double holds (1e3000, NaN) is left out of the feature's properties; rows with a NULL or duplicate
key are read as routes read them (the first one wins). The text check for NaN runs only on the
tile's candidate rows, once per tile and data version (tiles are cached by their ETag).
"""

from __future__ import annotations

from decimal import Decimal

from indoor.queries.validity import (
    EDGES,
    FLOOR,
    ROOMS,
    VERTICES,
    drawable_sql,
    has_no_nan_sql,
    level_float_sql,
    stroked_sql,
)


def _drawable(geometry: str) -> str:
    """SQL: a tile may draw `geometry` (a collection is drawable as GeoJSON, not in MVT)."""
    return (
        f"{drawable_sql(geometry)} AND ST_GeometryType({geometry}) <> 'ST_GeometryCollection'"
        f" AND {has_no_nan_sql(f'ST_AsGeoJSON({stroked_sql(geometry)}, 0)')}"
    )


EXTENT = 4096
BUFFER = 64
# Web Mercator's width in metres: a tile at zoom z spans WORLD_M / 2**z.
WORLD_M = 40075016.685578488

TILE = f"""
WITH bounds AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS merc,
           ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326) AS geo
), rooms AS MATERIALIZED (
    SELECT r.ogc_fid AS fid, r.ogc_fid AS id, r.text AS name, {level_float_sql("r.level")} AS level, r.building,
           r.category,
           ST_AsMVTGeom(ST_Transform(r.wkb_geometry, 3857), b.merc, %(extent)s, %(buffer)s, true) AS geom
      FROM {ROOMS} r, bounds b
     WHERE r.wkb_geometry && b.geo AND {_drawable("r.wkb_geometry")} AND %(rooms)s AND (%(level)s::numeric IS NULL OR r.level = %(level)s)
), floor AS MATERIALIZED (
    SELECT f.ogc_fid AS fid, f.ogc_fid AS id, f.layer, f.name, {level_float_sql("f.level")} AS level, f.building,
           ST_AsMVTGeom(ST_Simplify(ST_Transform({stroked_sql("f.wkb_geometry")}, 3857), %(tolerance)s, true),
                        b.merc, %(extent)s, %(buffer)s, true) AS geom
      FROM {FLOOR} f, bounds b
     WHERE f.wkb_geometry && b.geo AND {_drawable("f.wkb_geometry")} AND %(floor)s AND (%(level)s::numeric IS NULL OR f.level = %(level)s)
), network AS MATERIALIZED (
    SELECT e.id AS fid, e.id, e.kind, {level_float_sql("s.level")} AS level, {level_float_sql("t.level")} AS to_level,
           ST_AsMVTGeom(ST_Simplify(ST_Transform({stroked_sql("e.wkb_geometry")}, 3857), %(tolerance)s, true),
                        b.merc, %(extent)s, %(buffer)s, true) AS geom
      FROM {EDGES} e
      CROSS JOIN bounds b
      LEFT JOIN {VERTICES} s ON s.id = e.source
      LEFT JOIN {VERTICES} t ON t.id = e.target
     WHERE e.wkb_geometry && b.geo AND {_drawable("e.wkb_geometry")} AND %(network)s
       AND (%(level)s::numeric IS NULL OR s.level = %(level)s OR t.level = %(level)s)
)
SELECT coalesce((SELECT ST_AsMVT(rooms, 'rooms', %(extent)s, 'geom', 'fid') FROM rooms WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(floor, 'floor', %(extent)s, 'geom', 'fid') FROM floor WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(network, 'network', %(extent)s, 'geom', 'fid') FROM network
                  WHERE geom IS NOT NULL), '')
"""  # noqa: S608 - constant fragments; values are parameters

LAYERS = {
    "rooms": {"id": "Number", "name": "String", "level": "Number", "building": "String", "category": "String"},
    "floor": {"id": "Number", "layer": "String", "name": "String", "level": "Number", "building": "String"},
    "network": {"id": "Number", "kind": "String", "level": "Number", "to_level": "Number"},
}


def tile(cur, z: int, x: int, y: int, level: Decimal | None = None, layers: tuple = tuple(LAYERS)) -> bytes:
    """The tile z/x/y (XYZ scheme) with `layers` (all three by default) and the features of
    `level` only, when given (a network edge is on both of its vertices' levels); b'' when it
    holds nothing."""
    span = WORLD_M / 2**z
    cur.execute(
        TILE,
        {
            "z": z,
            "x": x,
            "y": y,
            "extent": EXTENT,
            "buffer": BUFFER,
            "margin": BUFFER / EXTENT,
            "tolerance": span / 1024,
            "level": level,
            **{name: name in layers for name in LAYERS},
        },
    )
    return bytes(cur.fetchone()[0])
