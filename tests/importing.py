"""Shared by the import tests: whole-database snapshots, route checks through /api/route/."""

from __future__ import annotations

import psycopg2
from psycopg2 import sql

from indoor import create_app
from tests.conftest import TEST_RATE_LIMITS

NETWORK_TABLES = ("room_points", "base_floor", "nav_edges_final", "nav_edges_work_vertices_pgr")


def snapshot(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the database (the versions and the service's own tables too): its row count
    and a digest of its full contents, so "nothing changed" compares every row."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'")
        tables = sorted(row[0] for row in cur.fetchall())
        result = {}
        for table in tables:
            cur.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"
                ).format(sql.Identifier(table))
            )
            result[table] = tuple(cur.fetchone())
    conn.close()
    return result


def counts(url: str) -> dict[str, int]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        result = {}
        for table in NETWORK_TABLES:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            result[table] = cur.fetchone()[0]
    conn.close()
    return result


def route_client(url: str, redis_url: str):
    """The real app (its /api/route/ endpoint) on `url`: -> (app, test client)."""
    app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "LOG_FORMAT": "text", **TEST_RATE_LIMITS})
    return app, app.test_client()


def straight_line_m(url: str, a: int, b: int) -> float:
    """The geodesic distance between two rooms: no route may be shorter."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT ST_Distance(a.wkb_geometry::geography, b.wkb_geometry::geography)
                 FROM room_points a, room_points b WHERE a.ogc_fid = %s AND b.ogc_fid = %s""",
            (a, b),
        )
        distance = cur.fetchone()[0]
    conn.close()
    return distance


def straight_lines_m(url: str, rooms: list[int]) -> dict[tuple[int, int], float]:
    """The geodesic distance between every two of `rooms` (one query)."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT a.ogc_fid, b.ogc_fid, ST_Distance(a.wkb_geometry::geography, b.wkb_geometry::geography)
                 FROM room_points a, room_points b WHERE a.ogc_fid = ANY(%(ids)s) AND b.ogc_fid = ANY(%(ids)s)""",
            {"ids": rooms},
        )
        distances = {(a, b): d for a, b, d in cur.fetchall()}
    conn.close()
    return distances
