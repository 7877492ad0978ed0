"""init-db: creates what is missing, keeps every row, never rewrites a table, runs any number of times."""

import psycopg2
import pytest

from tests.conftest import run_cli

TABLES = ["room_points", "base_floor", "nav_edges_final", "nav_edges_work_vertices_pgr"]


def query(url, sql, params=None):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else None
    conn.close()
    return rows


def schema_snapshot(url):
    columns = query(
        url,
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = ANY(%s) ORDER BY 1, 2",
        (TABLES + ["indoor_versions"],),
    )
    indexes = query(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
    triggers = query(url, "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2")
    return columns, indexes, triggers


def test_init_db_on_an_empty_database_creates_the_contract(fresh_database):
    url = fresh_database()
    result = run_cli(url, "init-db")
    assert result.returncode == 0, result.stderr
    extensions = {r[0] for r in query(url, "SELECT extname FROM pg_extension")}
    assert {"postgis", "pgrouting", "pg_trgm"} <= extensions
    columns, indexes, triggers = schema_snapshot(url)
    have = {(t, c) for t, c, *_ in columns}
    for table, column in [
        ("room_points", "level"),
        ("room_points", "building"),
        ("base_floor", "layer"),
        ("nav_edges_final", "kind"),
        ("nav_edges_work_vertices_pgr", "level"),
    ]:
        assert (table, column) in have
    index_defs = " ".join(d for _, d in indexes)
    for needle in ["USING gist (wkb_geometry)", "USING gist (the_geom)", "gin_trgm_ops", "(source)", "(target)"]:
        assert needle in index_defs
    assert {t for _, t in triggers} >= {"nav_edges_final", "nav_edges_work_vertices_pgr", "room_points"}


def test_init_db_twice_changes_nothing(fresh_database):
    url = fresh_database()
    assert run_cli(url, "init-db").returncode == 0
    first = schema_snapshot(url)
    second_run = run_cli(url, "init-db")
    assert second_run.returncode == 0, second_run.stderr
    assert schema_snapshot(url) == first


@pytest.fixture
def old_database(fresh_database):
    """The bare tables of an old deployment (ogr2ogr + pgr_createTopology), holding rows."""
    url = fresh_database("old")
    query(url, "CREATE EXTENSION postgis")
    query(
        url,
        """
        CREATE TABLE room_points (ogc_fid serial PRIMARY KEY, text text NOT NULL,
                                  wkb_geometry geometry(Point, 4326) NOT NULL);
        CREATE TABLE base_floor (ogc_fid serial PRIMARY KEY, layer text, wkb_geometry geometry(Geometry, 4326) NOT NULL);
        CREATE TABLE nav_edges_work_vertices_pgr (id bigint PRIMARY KEY, cnt integer, chk integer,
                                                  the_geom geometry(Point, 4326) NOT NULL);
        CREATE TABLE nav_edges_final (id bigint PRIMARY KEY, source bigint NOT NULL, target bigint NOT NULL,
                                      cost double precision NOT NULL, reverse_cost double precision NOT NULL,
                                      wkb_geometry geometry(LineString, 4326) NOT NULL);
        INSERT INTO room_points (text, wkb_geometry) VALUES
          ('E01.14', 'SRID=4326;POINT(13.369 52.525)'), ('Ticket office', 'SRID=4326;POINT(13.3691 52.5251)');
        INSERT INTO base_floor (layer, wkb_geometry) VALUES
          ('wall', 'SRID=4326;LINESTRING(13.369 52.525, 13.370 52.525)');
        INSERT INTO nav_edges_work_vertices_pgr (id, cnt, chk, the_geom) VALUES
          (1, 1, 0, 'SRID=4326;POINT(13.369 52.525)'), (2, 1, 0, 'SRID=4326;POINT(13.370 52.525)');
        INSERT INTO nav_edges_final VALUES
          (10, 1, 2, 68.0, 68.0, 'SRID=4326;LINESTRING(13.369 52.525, 13.370 52.525)');
        """,
    )
    return url


def table_contents(url):
    return {t: query(url, f"SELECT * FROM {t} ORDER BY 1") for t in TABLES}  # noqa: S608 - fixed names


def relfilenodes(url):
    return dict(query(url, "SELECT relname, relfilenode FROM pg_class WHERE relname = ANY(%s)", (TABLES,)))


def test_init_db_upgrades_an_old_bare_schema_keeping_every_row(old_database):
    url = old_database
    before = table_contents(url)
    files_before = relfilenodes(url)
    for _ in range(2):
        result = run_cli(url, "init-db")
        assert result.returncode == 0, result.stderr
    after = table_contents(url)
    # Every old row is still there with its old values; new columns got their defaults.
    assert [r[:3] for r in after["room_points"]] == [r[:3] for r in before["room_points"]]
    assert query(url, "SELECT text, level, building FROM room_points ORDER BY 1") == [
        ("E01.14", 0, None),
        ("Ticket office", 0, None),
    ]
    assert query(url, "SELECT id, cost, kind FROM nav_edges_final") == [(10, 68.0, "corridor")]
    assert query(url, "SELECT id, cnt, level FROM nav_edges_work_vertices_pgr ORDER BY 1") == [(1, 1, 0), (2, 1, 0)]
    # No table was rewritten (same files on disk): adding the columns did not copy the data.
    assert relfilenodes(url) == files_before


def test_graph_version_trigger_counts_edits_from_any_client(old_database):
    url = old_database
    assert run_cli(url, "init-db").returncode == 0
    version = query(url, "SELECT version FROM indoor_versions WHERE name = 'graph'")[0][0]
    query(url, "UPDATE nav_edges_final SET cost = 70 WHERE id = 10")
    query(url, "TRUNCATE nav_edges_final")
    assert query(url, "SELECT version FROM indoor_versions WHERE name = 'graph'")[0][0] == version + 2
    rooms = query(url, "SELECT version FROM indoor_versions WHERE name = 'rooms'")[0][0]
    query(url, "DELETE FROM room_points WHERE text = 'E01.14'")
    assert query(url, "SELECT version FROM indoor_versions WHERE name = 'rooms'")[0][0] == rooms + 1


def test_demo_is_deterministic_for_a_seed(fresh_database):
    digests = []
    for _ in range(2):
        url = fresh_database("demo")
        assert run_cli(url, "init-db").returncode == 0
        result = run_cli(url, "demo", "--seed", "7", "--levels", "3", "--grid", "6")
        assert result.returncode == 0, result.stderr
        digests.append(
            query(
                url,
                "SELECT md5(string_agg(concat_ws(',', id, source, target, cost, reverse_cost, kind,"
                " ST_AsText(wkb_geometry)), ';' ORDER BY id)) FROM nav_edges_final",
            )[0][0]
            + query(url, "SELECT md5(string_agg(text || level, ';' ORDER BY ogc_fid)) FROM room_points")[0][0]
        )
        kinds = {k for (k,) in query(url, "SELECT DISTINCT kind FROM nav_edges_final")}
        assert {"corridor", "door", "stairs", "escalator", "elevator"} <= kinds
        assert query(url, "SELECT count(DISTINCT level) FROM room_points")[0][0] == 3
    assert digests[0] == digests[1]


def test_demo_costs_are_never_below_the_geodesic_length(database_url):
    bad = query(
        database_url,
        """SELECT count(*) FROM nav_edges_final e
             JOIN nav_edges_work_vertices_pgr a ON a.id = e.source
             JOIN nav_edges_work_vertices_pgr b ON b.id = e.target
            WHERE (e.cost >= 0 AND e.cost < ST_Distance(a.the_geom::geography, b.the_geom::geography) - 1e-9)
               OR (e.reverse_cost >= 0 AND e.reverse_cost < ST_Distance(a.the_geom::geography, b.the_geom::geography) - 1e-9)""",
    )
    assert bad == [(0,)]


def test_check_graph_passes_the_demo_and_reports_a_cost_below_length(fresh_database):
    url = fresh_database("check")
    assert run_cli(url, "init-db").returncode == 0
    assert run_cli(url, "demo", "--grid", "4", "--levels", "2").returncode == 0
    clean = run_cli(url, "check-graph")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ok     cost below geodesic length: 0" in clean.stdout
    edge = query(url, "SELECT id FROM nav_edges_final WHERE kind = 'corridor' ORDER BY id LIMIT 1")[0][0]
    query(url, "UPDATE nav_edges_final SET cost = 0.5 WHERE id = %s", (edge,))
    broken = run_cli(url, "check-graph")
    assert broken.returncode == 1
    assert f"BREACH cost below geodesic length: 1 e.g. {edge}" in broken.stdout
