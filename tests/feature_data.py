"""A database for the listing tests: a level of 2,345 rooms among others, odd levels, a floor plan.

Made once per test run (idempotent by name): `feature_database(pg_cluster)` -> url. The
counts the tests check against are read back from the database, not assumed.
"""

from __future__ import annotations

import os

import psycopg2

from tests.conftest import run_cli

BIG_LEVEL = 7  # 2,345 rooms, interleaved (by id) with rooms of level 8
BIG_LEVEL_ROOMS = 2345

# 2,931 rows, every fifth on level 8: 2,931 - 586 = 2,345 on level 7. Labels: "R7-00001" ...;
# building alternates between "North" and "South"; points on a 0.00001-degree grid.
ROOMS = """
INSERT INTO room_points (text, level, building, wkb_geometry)
SELECT 'R' || lvl || '-' || lpad(g::text, 5, '0'), lvl,
       CASE WHEN g % 2 = 0 THEN 'North' ELSE 'South' END,
       ST_SetSRID(ST_MakePoint(13.3800000 + (g % 60) * 0.00001, 52.5300000 + (g / 60) * 0.00001), 4326)
  FROM generate_series(1, 2931) g
 CROSS JOIN LATERAL (SELECT CASE WHEN g % 5 = 0 THEN 8 ELSE 7 END AS lvl) l
"""

# Levels stored with a scale (0.0, 0.50) and a negative one; labels with LIKE metacharacters;
# a point with more than 7 decimals.
ODD_ROOMS = """
INSERT INTO room_points (text, level, building, wkb_geometry) VALUES
  ('Ground 0.0', 0.0, NULL, ST_SetSRID(ST_MakePoint(13.37, 52.52), 4326)),
  ('Mezzanine', 0.50, 'North', ST_SetSRID(ST_MakePoint(13.371, 52.521), 4326)),
  ('Basement', -1, 'North', ST_SetSRID(ST_MakePoint(13.372, 52.522), 4326)),
  ('100% Café_1', 0.50, 'North', ST_SetSRID(ST_MakePoint(13.123456789, 52.987654321), 4326)),
  ('1000 CAFÉ', 0.50, 'North', ST_SetSRID(ST_MakePoint(13.373, 52.523), 4326))
"""

# The floor plan of level 7: one clockwise square with a counter-clockwise hole (both the
# wrong way round for RFC 7946), a clockwise multipolygon, walls and doors.
FLOOR = """
INSERT INTO base_floor (layer, name, level, building, wkb_geometry) VALUES
  ('room', 'CW square with hole', 7, 'North', ST_GeomFromText(
     'POLYGON((13.38 52.53, 13.38 52.531, 13.381 52.531, 13.381 52.53, 13.38 52.53),
              (13.3802 52.5302, 13.3808 52.5302, 13.3808 52.5308, 13.3802 52.5308, 13.3802 52.5302))', 4326)),
  ('area', 'CW multipolygon', 7, 'South', ST_GeomFromText(
     'MULTIPOLYGON(((13.382 52.53, 13.382 52.531, 13.383 52.531, 13.382 52.53)))', 4326));
INSERT INTO base_floor (layer, name, level, building, wkb_geometry)
SELECT CASE WHEN g % 3 = 0 THEN 'door' ELSE 'wall' END, NULL, 7, CASE WHEN g % 2 = 0 THEN 'North' ELSE 'South' END,
       ST_SetSRID(ST_MakeLine(ST_MakePoint(13.38 + g * 0.00001, 52.53), ST_MakePoint(13.38 + g * 0.00001, 52.531)), 4326)
  FROM generate_series(1, 1200) g;
"""


def feature_database(pg_cluster) -> str:
    url = pg_cluster.create_database(f"features_{os.getpid()}")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('room_points') IS NOT NULL")
        ready = cur.fetchone()[0]
        if ready:
            cur.execute("SELECT count(*) FROM room_points")
            ready = cur.fetchone()[0] > 0
    conn.close()
    if ready:
        return url
    result = run_cli(url, "init-db")
    assert result.returncode == 0, result.stderr
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(ROOMS)
        cur.execute(ODD_ROOMS)
        cur.execute(FLOOR)
        cur.execute("ANALYZE room_points")
        cur.execute("ANALYZE base_floor")
    conn.close()
    return url


def query(url: str, statement: str, params=None) -> list:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall()
    conn.close()
    return rows
