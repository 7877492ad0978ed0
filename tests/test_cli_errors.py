"""Operators' errors: every `flask indoor` command, run as an operator runs it, with no database
configured, an unreachable one, wrong credentials or a missing database, prints one line saying
what to set or check and exits non-zero, without a traceback."""

from __future__ import annotations

import time

import psycopg2
import pytest

from indoor.ops.cli import indoor
from scripts.services import free_port
from tests.conftest import SHARED_DATA, run_cli

OSM_FILE = str(SHARED_DATA / "osm" / "berlin_hbf.osm")
# The arguments each command needs to get as far as the database. A command added to the group
# without an entry here fails test_every_command_is_covered.
COMMAND_ARGS = {
    "init-db": [],
    "demo": [],
    "import": [OSM_FILE],
    "import-osm": [OSM_FILE],
    "check-graph": [],
    "build-overlay": [],
    "token": ["list"],
}
COMMANDS = sorted(set(COMMAND_ARGS) & set(indoor.commands))
PASSWORD_ROLE = "indoor_cli_password_check"


def test_every_command_is_covered():
    assert set(indoor.commands) <= set(COMMAND_ARGS), "add the new command's arguments to COMMAND_ARGS"


def assert_one_clear_line(result, *expected: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: "), line
    for text in expected:
        assert text in line, line
    return line


@pytest.mark.parametrize("command", COMMANDS)
def test_without_database_url(command):
    result = run_cli("", command, *COMMAND_ARGS[command], env={"POSTGRES_HOST": "", "POSTGRES_DB": ""})
    assert_one_clear_line(result, "DATABASE_URL is not set", "postgresql://")


@pytest.mark.parametrize("command", COMMANDS)
def test_unreachable_database(command):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/indoor"  # nothing listens there
    line = assert_one_clear_line(run_cli(url, command, *COMMAND_ARGS[command]), "cannot connect to PostgreSQL")
    assert "Connection refused" in line and "check the host and port in DATABASE_URL" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_host(command):
    url = "postgresql://postgres@no-such-host.invalid:5432/indoor"
    line = assert_one_clear_line(run_cli(url, command, *COMMAND_ARGS[command]), "cannot connect to PostgreSQL")
    assert "no-such-host.invalid" in line and "check the host and port" in line


@pytest.fixture(scope="module")
def password_role(pg_cluster):
    """A role that must log in with its password (scram), on the session cluster: one pg_hba line
    for this role only, above the trust lines, so every other connection is unaffected."""
    hba = pg_cluster.datadir / "pg_hba.conf"
    rule = f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
    text = hba.read_text()
    if rule not in text:
        hba.write_text(rule + text)
    pg_cluster.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PASSWORD_ROLE}') THEN "
        f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'right-password'; END IF; END $$;"
        "SELECT pg_reload_conf();"
    )
    wrong = f"postgresql://{PASSWORD_ROLE}:wrong-password@127.0.0.1:{pg_cluster.port}/postgres"
    deadline = time.monotonic() + 10
    while True:  # the reload is asynchronous: wait until the rule is in force
        try:
            psycopg2.connect(wrong).close()
        except psycopg2.OperationalError as exc:
            if "password authentication failed" in str(exc):
                break
        assert time.monotonic() < deadline, "pg_hba.conf reload not in force"
        time.sleep(0.1)
    return wrong


@pytest.mark.parametrize("command", COMMANDS)
def test_wrong_password(command, password_role):
    line = assert_one_clear_line(run_cli(password_role, command, *COMMAND_ARGS[command]), "cannot connect")
    assert "password authentication failed" in line and "check the user and password in DATABASE_URL" in line
    assert "wrong-password" not in line


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_database(command, pg_cluster):
    line = assert_one_clear_line(run_cli(pg_cluster.url("no_such_db"), command, *COMMAND_ARGS[command]))
    assert '"no_such_db" does not exist' in line and "check the database name in DATABASE_URL" in line


@pytest.mark.parametrize("command", ["demo", "check-graph", "build-overlay"])
def test_schema_missing_names_init_db(command, fresh_database):
    line = assert_one_clear_line(run_cli(fresh_database("noschema"), command, *COMMAND_ARGS[command]))
    assert "does not exist" in line and "run `flask --app wsgi indoor init-db` first" in line


def test_init_db_without_the_right_to_create_extensions(fresh_database, pg_cluster):
    """A managed database's application user may not create PostGIS: say who must, and what."""
    role = "indoor_cli_no_superuser"
    pg_cluster.psql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} LOGIN; END IF; END $$;"
    )
    url = fresh_database("noext").replace("postgresql://postgres@", f"postgresql://{role}@")
    line = assert_one_clear_line(run_cli(url, "init-db"), "permission denied to create extension")
    assert "have a superuser run CREATE EXTENSION for postgis, pgrouting, pg_trgm, btree_gist" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_help_needs_no_database(command):
    result = run_cli("", command, "--help", env={"POSTGRES_HOST": "", "POSTGRES_DB": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ") and f"indoor {command} [OPTIONS]" in result.stdout


def test_a_command_fails_before_it_reads_its_file(tmp_path):
    """The database is checked first: an import of a file nobody could read still says what to
    fix about the database at once (a large extract is not parsed for nothing)."""
    unreadable = tmp_path / "not-osm.osm"
    unreadable.write_text("this is not OpenStreetMap XML")
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/indoor"
    assert_one_clear_line(run_cli(url, "import-osm", str(unreadable)), "cannot connect to PostgreSQL")


# -- inputs an operator can get wrong: one line, exit 1, nothing written --------------------------


@pytest.fixture(scope="module")
def empty_database(pg_cluster):
    url = pg_cluster.create_database("indoor_cli_inputs")
    assert run_cli(url, "init-db").returncode == 0
    return url


def _rows(url: str) -> tuple:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM room_points), (SELECT count(*) FROM nav_edges_final)")
        return cur.fetchone()


@pytest.mark.parametrize("args", [["--levels", "0"], ["--grid", "1"], ["--buildings", "0"], ["--min-edges", "-1"]])
def test_demo_options_out_of_range_are_refused(empty_database, args):
    line = assert_one_clear_line(run_cli(empty_database, "demo", *args), args[0], "or more")
    assert args[1] in line
    assert _rows(empty_database) == (0, 0)


def test_importing_a_path_that_never_ends_fails_at_once(empty_database, tmp_path):
    endless = tmp_path / "campus.geojson"
    endless.symlink_to("/dev/zero")
    started = time.monotonic()
    result = run_cli(empty_database, "import", str(endless))
    assert time.monotonic() - started < 60  # it read for ever before
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr
    assert "campus.geojson" in lines[0] and "not a regular file" in lines[0]


@pytest.mark.parametrize(
    "document",
    [
        '{"type": "FeatureCollection", "features": []}',
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
        ' "geometry": {"type": "Point", "coordinates": [13.4, 52.5]}}]}',
    ],
)
def test_importing_a_file_with_nothing_usable_exits_1(empty_database, tmp_path, document):
    source = tmp_path / "nothing.geojson"
    source.write_text(document)
    result = run_cli(empty_database, "import", str(source), "--level", "0")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result
    assert "nothing.geojson" in lines[0] and "no usable features" in lines[0]
    assert _rows(empty_database) == (0, 0)
