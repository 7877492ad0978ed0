"""What OGC API - Features needs beyond the rooms and floor-plan listings: the routing network's
edges and vertices as feature pages, one network feature, table extents and counts.

The pages have the shape of rooms.ROOMS_PAGE (`(id, feature)` rows in id order, LIMIT n + 1,
unused filters folded away at plan time). Rows are written by other tools: a NULL geometry
becomes `null`, a NaN or infinite cost becomes `null` (JSON has no such numbers), and positions
and levels are read as every listing reads them (queries/validity.py: null when not drawable, not
a double); rows with a NULL or duplicate key are read as routes read them (the first one wins).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal

from indoor.queries.features import BEFORE_FIRST, Page, as_bytes, bbox_filter_sql, bbox_params, fetch_page
from indoor.queries.validity import EDGES, VERTICES, geojson_sql, level_json_sql


@dataclass(frozen=True)
class EdgeFilters:
    level: Decimal | None = None  # an edge is on a level when either of its vertices is
    kind: str | None = None
    bbox: tuple | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VertexFilters:
    level: Decimal | None = None
    bbox: tuple | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _finite(column: str) -> str:
    """SQL: a cost as JSON, null when NULL, NaN or infinite."""
    return f"CASE WHEN {column} > '-Infinity' AND {column} < 'Infinity' THEN {column}::text ELSE 'null' END"


_EDGE_FEATURE = f"""
       '{{"type":"Feature","id":' || e.id
       || ',"geometry":' || {geojson_sql("e.wkb_geometry")}
       || ',"properties":{{"kind":' || coalesce(to_json(e.kind)::text, 'null')
       || ',"level":' || {level_json_sql("s.level")}
       || ',"to_level":' || {level_json_sql("t.level")}
       || ',"source":' || e.source || ',"target":' || e.target
       || ',"cost":' || {_finite("e.cost")}
       || ',"reverse_cost":' || {_finite("e.reverse_cost")} || '}}}}'
  FROM {EDGES} e
  LEFT JOIN {VERTICES} s ON s.id = e.source
  LEFT JOIN {VERTICES} t ON t.id = e.target"""  # noqa: S608 - constant fragments

EDGES_PAGE = f"""
SELECT e.id, {_EDGE_FEATURE}
 WHERE e.id > %(after)s
   AND (%(level)s::numeric IS NULL OR s.level = %(level)s::numeric OR t.level = %(level)s::numeric)
   AND (%(kind)s::text IS NULL OR e.kind = %(kind)s::text)
   AND {bbox_filter_sql("e.wkb_geometry")}
 ORDER BY e.id
 LIMIT %(limit)s + 1
"""

EDGE = f"SELECT {_EDGE_FEATURE} WHERE e.id = %(id)s"

_VERTEX_FEATURE = f"""
       '{{"type":"Feature","id":' || id
       || ',"geometry":' || {geojson_sql("the_geom")}
       || ',"properties":{{"level":' || {level_json_sql("level")} || '}}}}'
  FROM {VERTICES} v"""  # noqa: S608 - constant fragments

VERTICES_PAGE = f"""
SELECT id, {_VERTEX_FEATURE}
 WHERE id > %(after)s
   AND (%(level)s::numeric IS NULL OR level = %(level)s::numeric)
   AND {bbox_filter_sql("the_geom")}
 ORDER BY id
 LIMIT %(limit)s + 1
"""

VERTEX = f"SELECT {_VERTEX_FEATURE} WHERE id = %(id)s"


def edges_page(cur, filters: EdgeFilters, after: int | None, limit: int) -> Page:
    params = {
        "after": BEFORE_FIRST if after is None else after,
        "limit": limit,
        "level": filters.level,
        "kind": filters.kind,
        **bbox_params(filters.bbox),
    }
    return fetch_page(cur, EDGES_PAGE, params, limit)


def vertices_page(cur, filters: VertexFilters, after: int | None, limit: int) -> Page:
    params = {
        "after": BEFORE_FIRST if after is None else after,
        "limit": limit,
        "level": filters.level,
        **bbox_params(filters.bbox),
    }
    return fetch_page(cur, VERTICES_PAGE, params, limit)


def _one(cur, statement: str, ident: int) -> bytes | None:
    as_bytes(cur)
    cur.execute(statement, {"id": ident})
    row = cur.fetchone()
    return bytes(row[0]) if row else None


def edge_feature(cur, ident: int) -> bytes | None:
    return _one(cur, EDGE, ident)


def vertex_feature(cur, ident: int) -> bytes | None:
    return _one(cur, VERTEX, ident)


# -- collection metadata ----------------------------------------------------------------------

# Exact extents and row counts of the four tables, in one statement (a scan of each: callers
# keep the answer until the tables' versions change).
EXTENTS = """
SELECT name, n, ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box)
  FROM (SELECT 'rooms' AS name, count(*) AS n, ST_Extent(wkb_geometry) AS box FROM room_points
        UNION ALL
        SELECT 'base-floor', count(*), ST_Extent(wkb_geometry) FROM base_floor
        UNION ALL
        SELECT 'edges', count(*), ST_Extent(wkb_geometry) FROM nav_edges_final
        UNION ALL
        SELECT 'vertices', count(*), ST_Extent(the_geom) FROM nav_edges_work_vertices_pgr) t
"""


def extents(cur) -> dict:
    """{collection id: (row count, (minlon, minlat, maxlon, maxlat) or None)}."""
    cur.execute(EXTENTS)
    found = {}
    for name, count, *box in cur.fetchall():
        finite = all(v is not None and abs(v) < 1e300 for v in box)
        found[name] = (int(count), tuple(round(float(v), 7) for v in box) if finite else None)
    return found
