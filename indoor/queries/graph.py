"""`indoor check-graph`: breaches of the DATA.md invariants that exact routing relies on, and
rows another tool wrote that the service cannot use (queries/validity.py reads around them)."""

from __future__ import annotations

from indoor.queries.validity import MAX_LEVEL, TRACKED, drawable_sql, in_lonlat_sql, plain_sql, stroked_sql


def _offending(table: str, ident: str, where: str) -> str:
    """The check statement for rows of `table` matching `where`: up to 10 ids and the count."""
    return f"""SELECT array_agg({ident} ORDER BY {ident}) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT {ident}, row_number() OVER (ORDER BY {ident}) AS n FROM {table} WHERE {where}) x"""  # noqa: S608 - constant names


def _not_finite(value: str) -> str:
    """SQL: `value` is NULL, NaN, Infinity or -Infinity."""
    return f"({value} > '-Infinity' AND {value} < 'Infinity') IS NOT TRUE"


def _unusable_geometry(geometry: str, valid: bool = True) -> str:
    """SQL: `geometry` is NULL, empty, of another SRID, not within lon/lat, not drawable (a
    surface, TIN, triangle or nested collection: queries/validity.py), or (with `valid`) invalid.
    An edge is not asked to be valid: an elevator is drawn as a line of two equal points, which OGC
    calls invalid."""
    # GEOS knows no solids, also inside a collection: ST_IsValid raises on them, so the CASE asks
    # it only of drawable geometries.
    is_valid = f"CASE WHEN {drawable_sql(geometry)} THEN ST_IsValid({stroked_sql(geometry)}) ELSE false END"
    usable = (
        f"{in_lonlat_sql(geometry)} AND {is_valid}"
        if valid
        else f"{in_lonlat_sql(geometry)} AND {drawable_sql(geometry)}"
    )
    return f"({usable}) IS NOT TRUE"


def _not_a_level(level: str) -> str:
    """SQL: not a level the API serves (NULL, NaN, Infinity or beyond the `level` parameter's range)."""
    return f"({level} BETWEEN -{MAX_LEVEL} AND {MAX_LEVEL}) IS NOT TRUE"


def _null_keys(table: str, columns: tuple[str, ...], order: str) -> str:
    """The check statement for rows of `table` with a NULL in one of `columns` (keys): the rows
    have no id to name, so up to 10 of their ctids (as text, in storage order) and the count."""
    where = " OR ".join(f"{column} IS NULL" for column in columns)
    return f"""SELECT array_agg(ctid::text ORDER BY {order}) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT ctid, row_number() OVER (ORDER BY {order}) AS n FROM {table} WHERE {where}) x"""  # noqa: S608 - constant names


def _duplicate_keys(table: str, key: str) -> str:
    """The check statement for keys of `table` held by more than one row: up to 10 keys and how many
    rows are left out (all but the first of each key, as validity.py reads them)."""
    return f"""SELECT array_agg({key} ORDER BY {key}) FILTER (WHERE n <= 10), coalesce(sum(extra), 0) FROM (
             SELECT {key}, count(*) - 1 AS extra, row_number() OVER (ORDER BY {key}) AS n
               FROM {table} WHERE {key} IS NOT NULL GROUP BY {key} HAVING count(*) > 1) x"""  # noqa: S608


# Each check: (name, is_breach, SQL returning up to 10 offending ids and the total count).
# A cost below the geodesic distance between an edge's vertices would let a windowed search
# miss a shorter path: that is a breach, not a style issue. (Vertices without a usable position
# have a check of their own; their distances mean nothing: NaN, or coerced onto the globe.)
CHECKS = [
    # Tables created without the contract's keys (queries/validity.py reads around these rows).
    (
        "edge with a NULL key (id, source, target or kind; left out, e.g. by ctid)",
        True,
        _null_keys("nav_edges_final", ("id", "source", "target", "kind"), "ctid"),
    ),
    (
        "duplicate edge id (the first row stored is used, the others left out)",
        True,
        _duplicate_keys("nav_edges_final", "id"),
    ),
    (
        "vertex with a NULL key (id; left out, e.g. by ctid)",
        True,
        _null_keys("nav_edges_work_vertices_pgr", ("id",), "ctid"),
    ),
    (
        "duplicate vertex id (the first row stored is used, the others left out)",
        True,
        _duplicate_keys("nav_edges_work_vertices_pgr", "id"),
    ),
    ("room with a NULL key (ogc_fid; left out, e.g. by ctid)", True, _null_keys("room_points", ("ogc_fid",), "ctid")),
    (
        "duplicate room ogc_fid (the first row stored is used, the others left out)",
        True,
        _duplicate_keys("room_points", "ogc_fid"),
    ),
    (
        "floor-plan row with a NULL key (ogc_fid; left out, e.g. by ctid)",
        True,
        _null_keys("base_floor", ("ogc_fid",), "ctid"),
    ),
    (
        "duplicate floor-plan ogc_fid (the first row stored is used, the others left out)",
        True,
        _duplicate_keys("base_floor", "ogc_fid"),
    ),
    (
        "cost below geodesic length",
        True,
        f"""SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT e.id, row_number() OVER (ORDER BY e.id) AS n
               FROM nav_edges_final e
               JOIN nav_edges_work_vertices_pgr a ON a.id = e.source AND {in_lonlat_sql("a.the_geom")}
               JOIN nav_edges_work_vertices_pgr b ON b.id = e.target AND {in_lonlat_sql("b.the_geom")}
              WHERE (e.cost >= 0 AND e.cost < ST_Distance(a.the_geom::geography, b.the_geom::geography) - 1e-6)
                 OR (e.reverse_cost >= 0
                     AND e.reverse_cost < ST_Distance(a.the_geom::geography, b.the_geom::geography) - 1e-6)) x""",  # noqa: S608
    ),
    (
        "edge refers to a missing vertex",
        True,
        """SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT e.id, row_number() OVER (ORDER BY e.id) AS n
               FROM nav_edges_final e
              WHERE NOT EXISTS (SELECT 1 FROM nav_edges_work_vertices_pgr v WHERE v.id = e.source)
                 OR NOT EXISTS (SELECT 1 FROM nav_edges_work_vertices_pgr v WHERE v.id = e.target)) x""",
    ),
    (
        "edge closed both ways",
        False,
        """SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT id, row_number() OVER (ORDER BY id) AS n FROM nav_edges_final
              WHERE cost < 0 AND reverse_cost < 0) x""",
    ),
    (
        "vertex with no edge",
        False,
        """SELECT array_agg(id ORDER BY id) FILTER (WHERE n <= 10), count(*) FROM (
             SELECT v.id, row_number() OVER (ORDER BY v.id) AS n FROM nav_edges_work_vertices_pgr v
              WHERE NOT EXISTS (SELECT 1 FROM nav_edges_final e WHERE e.source = v.id OR e.target = v.id)) x""",
    ),
    # Rows another tool wrote that routes and pages read around (closed, null or left out):
    # each is a breach, since the building then is not what its authors drew.
    (
        "edge cost NULL, NaN or Infinity (routes treat it as closed)",
        True,
        _offending("nav_edges_final", "id", f"{_not_finite('cost')} OR {_not_finite('reverse_cost')}"),
    ),
    (
        "edge geometry empty or not lon/lat",
        True,
        _offending("nav_edges_final", "id", _unusable_geometry("wkb_geometry", valid=False)),
    ),
    (
        "vertex level NULL, NaN, Infinity or beyond +-1000 (never snapped to)",
        True,
        _offending("nav_edges_work_vertices_pgr", "id", _not_a_level("level")),
    ),
    (
        "vertex position empty, invalid or not lon/lat (never snapped to)",
        True,
        _offending("nav_edges_work_vertices_pgr", "id", _unusable_geometry("the_geom")),
    ),
    (
        "room that cannot be located: position empty, invalid, not a lon/lat point, or level"
        " NULL, NaN, Infinity or beyond +-1000",
        True,
        _offending(
            "room_points",
            "ogc_fid",
            f"{_unusable_geometry('wkb_geometry')} OR ST_GeometryType(wkb_geometry) IS DISTINCT FROM 'ST_Point'"
            f" OR {_not_a_level('level')}",
        ),
    ),
    (
        "floor-plan geometry empty, invalid or not lon/lat",
        True,
        _offending("base_floor", "ogc_fid", _unusable_geometry("wkb_geometry")),
    ),
    (
        "floor-plan level NULL, NaN, Infinity or beyond +-1000",
        True,
        _offending("base_floor", "ogc_fid", _not_a_level("level")),
    ),
]


# Rows that are not plain but missing from init-db's list (written while its triggers were off or
# before they existed): the listings would write them with the plain expressions.
CHECKS += [
    (
        f"{table} row not plain but not listed in indoor_unusable_rows (written past init-db's triggers: run init-db)",
        True,
        _offending(
            table,
            key,
            f"{key} IS NOT NULL AND {plain_sql(geometry, level, texts, ccw)} IS NOT TRUE"  # noqa: S608 - constant names
            f" AND {key} NOT IN (SELECT u.id FROM indoor_unusable_rows u WHERE u.tbl = '{table}')",
        ),
    )
    for table, (_, key, geometry, level, texts, ccw) in TRACKED.items()
]


def check_graph(cur) -> list[dict]:
    results = []
    for name, is_breach, statement in CHECKS:
        cur.execute(statement)
        sample, count = cur.fetchone()
        results.append({"check": name, "breach": is_breach, "count": int(count), "sample": sample or []})
    return results
