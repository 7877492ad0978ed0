"""scripts/backup.sh and scripts/restore.sh: the demo building round-trips into a fresh database
with the same rows and, through the API, the same levels, rooms and routes."""

from __future__ import annotations

import os
import subprocess

import psycopg2
import pytest

from indoor import create_app
from tests.conftest import ROOT, run_cli

TABLES = ["room_points", "base_floor", "nav_edges_final", "nav_edges_work_vertices_pgr"]


def run_script(name: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_", "DATABASE_URL"))}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / name), *map(str, args)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def row_counts(url: str) -> dict[str, int]:
    """Rows in the contract tables and in every indoor_* table."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
            " AND (relname = ANY(%s) OR relname LIKE 'indoor\\_%%') ORDER BY 1",
            (TABLES,),
        )
        names = [row[0] for row in cur.fetchall()]
        counts = {}
        for name in names:
            cur.execute(psycopg2.sql.SQL("SELECT count(*) FROM {}").format(psycopg2.sql.Identifier(name)))
            counts[name] = cur.fetchone()[0]
    return counts


@pytest.fixture(scope="module")
def backup_file(direct_database_url, tmp_path_factory):
    path = tmp_path_factory.mktemp("backup") / "indoor.dump"
    result = run_script("backup.sh", path, env={"DATABASE_URL": direct_database_url})
    assert result.returncode == 0, result.stderr
    assert "backup: " in result.stdout
    return path


@pytest.fixture(scope="module")
def restored_url(backup_file, pg_cluster):
    url = pg_cluster.create_database(f"restored_{os.getpid()}")
    result = run_script("restore.sh", backup_file, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "init-db:" in result.stdout
    return url


def test_same_rows_after_a_round_trip(direct_database_url, restored_url):
    source = row_counts(direct_database_url)
    assert set(TABLES) <= set(source) and "indoor_versions" in source and "indoor_route_shortcuts" in source
    assert all(source[name] > 0 for name in TABLES)
    assert row_counts(restored_url) == source


def test_same_answers_through_the_api(client, direct_database_url, restored_url, sql):
    # No Redis for the restored side: every answer is computed from its own database.
    restored_app = create_app({"DATABASE_URL": restored_url, "TESTING": True, "LOG_FORMAT": "text"})
    restored = restored_app.test_client()
    try:
        for path in ("/api/levels/", "/api/rooms/?limit=50", "/api/base-floor/?limit=50"):
            source_page, restored_page = client.get(path), restored.get(path)
            assert source_page.status_code == restored_page.status_code == 200
            assert restored_page.get_json() == source_page.get_json()
        rooms = [row[0] for row in sql("SELECT ogc_fid FROM room_points ORDER BY level, ogc_fid")]
        pairs = [(rooms[0], rooms[-1]), (rooms[len(rooms) // 3], rooms[2 * len(rooms) // 3]), (rooms[5], rooms[6])]
        for a, b in pairs:
            for profile in ("walking", "accessible"):
                path = f"/api/route/?from={a}&to={b}&profile={profile}"
                source_route, restored_route = client.get(path), restored.get(path)
                assert source_route.status_code == 200, source_route.get_json()
                assert restored_route.headers["X-Cache"] == "MISS"
                assert restored_route.get_json() == source_route.get_json()
        ready = restored.get("/api/health/ready").get_json()
        assert ready["database"] == "ok"
    finally:
        restored_app.extensions["indoor.db"].close()


def test_restored_database_keeps_the_version_triggers(restored_url):
    """init-db after the data: an edit by another tool still bumps the graph version."""
    with psycopg2.connect(restored_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM indoor_versions WHERE name = 'graph'")
        before = cur.fetchone()[0]
        cur.execute("UPDATE nav_edges_final SET cost = cost WHERE id = (SELECT min(id) FROM nav_edges_final)")
        cur.execute("SELECT version FROM indoor_versions WHERE name = 'graph'")
        assert cur.fetchone()[0] == before + 1
        conn.rollback()


def test_restore_refuses_a_database_with_data(backup_file, direct_database_url):
    before = row_counts(direct_database_url)
    result = run_script("restore.sh", backup_file, env={"DATABASE_URL": direct_database_url})
    assert result.returncode != 0
    assert "already has" in result.stderr and "restore into an empty database" in result.stderr
    assert row_counts(direct_database_url) == before


def test_scripts_say_what_to_set(tmp_path, pg_cluster):
    for script, args in (("backup.sh", [tmp_path / "x.dump"]), ("restore.sh", [ROOT / "README.md"])):
        result = run_script(script, *args, env={})
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
        assert "DATABASE_URL is not set" in result.stderr
    result = run_script("backup.sh", env={})
    assert result.returncode == 2 and "usage: scripts/backup.sh FILE" in result.stderr
    assert not (tmp_path / "x.dump").exists() and not (tmp_path / "x.dump.partial").exists()


def test_restore_as_a_managed_databases_application_user(pg_cluster, fresh_database, tmp_path):
    """A managed database (CloudNativePG, a cloud service): a superuser created init-db's
    extensions, the application user owns the database and may create no extension. A dump of
    a server with more extensions than the service needs restores there as that user."""
    source = fresh_database("src_more_ext")
    assert run_cli(source, "init-db", "--demo-if-empty").returncode == 0
    with psycopg2.connect(source) as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS hstore")  # the server's, not the service's
    dump = tmp_path / "more.dump"
    assert run_script("backup.sh", dump, env={"DATABASE_URL": source}).returncode == 0
    listing = subprocess.run(["pg_restore", "--list", dump], capture_output=True, text=True, check=True).stdout
    assert "EXTENSION - postgis" in listing and "hstore" not in listing

    role = "indoor_managed_app"
    target = fresh_database("managed")
    database = target.rsplit("/", 1)[1]
    pg_cluster.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN; END IF; END $$; ALTER DATABASE {database} OWNER TO {role};"
    )
    for extension in ("postgis", "pgrouting", "pg_trgm", "btree_gist"):
        pg_cluster.psql(f"CREATE EXTENSION IF NOT EXISTS {extension}", dbname=database)
    as_app = target.replace("postgresql://postgres@", f"postgresql://{role}@")
    result = run_script("restore.sh", dump, env={"DATABASE_URL": as_app})
    assert result.returncode == 0, result.stderr
    assert row_counts(target) == row_counts(source)
    with psycopg2.connect(target) as conn, conn.cursor() as cur:
        cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'room_points'")
        assert cur.fetchone()[0] == role
        cur.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hstore'")
        assert cur.fetchone()[0] == 0
