"""The test harness: real PostgreSQL (PostGIS + pgRouting) and Redis on free ports in temp dirs.

Session fixtures start one cluster and one Redis for the whole run and stop them at the end.
`database_url` is a database with the schema and the demo campus; tests that need an empty or
old-style database make their own with `fresh_database`.

With INDOOR_TEST_PGBOUNCER=1 (the second pass of `make test`) the service reaches that database
through a real pgbouncer in transaction pooling mode: `database_url` (what the app and `serve`
use) goes through it, while init-db and the `sql` fixture (admin work) connect directly
(`direct_database_url`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indoor import create_app  # noqa: E402
from scripts.services import PgBouncer, PostgresCluster, RedisServer, flask_cli  # noqa: E402

# Real buildings live beside the project (../shared/data), as in CI; INDOOR_SHARED_DATA overrides.
SHARED_DATA = Path(os.environ.get("INDOOR_SHARED_DATA", ROOT.parent / "shared" / "data"))
VIA_PGBOUNCER = os.environ.get("INDOOR_TEST_PGBOUNCER", "") not in ("", "0")
# Limits high enough that no test meets them by accident (tests of the limits set their own).
# The limiter still runs, with its Redis storage, on every request of the suite.
TEST_RATE_LIMITS = {
    "RATELIMIT_DEFAULT": "100000/minute",
    "RATELIMIT_ROUTE": "100000/minute",
    "AUTH_FAILURES_LIMIT": "100000/minute",
}


def pytest_report_header(config):
    return "database: " + ("through pgbouncer (pool_mode = transaction)" if VIA_PGBOUNCER else "direct")


@pytest.fixture(scope="session")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="indoor-test-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def route_index_dir(workdir):
    """The route index files of every app and server the tests start (ROUTE_INDEX_DIR): the
    session's own, removed with it, never the machine's default directory."""
    os.environ["ROUTE_INDEX_DIR"] = str(workdir / "route-index")
    yield workdir / "route-index"


@pytest.fixture(scope="session")
def pg_cluster(workdir):
    cluster = PostgresCluster(workdir / "pg").init().start()
    yield cluster
    cluster.stop("immediate")


@pytest.fixture(scope="session")
def redis_server(workdir):
    server = RedisServer(workdir=workdir).start()
    yield server
    server.stop()


@pytest.fixture
def flushed_redis_db(redis_server):
    """A Redis DB of the session server emptied for this test (rate-limit counters start at 0)."""
    import redis

    def make(db: int = 13) -> str:
        url = redis_server.url(db)
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        return url

    return make


_db_names = itertools.count(1)


@pytest.fixture
def fresh_database(pg_cluster):
    """A new, empty database (a factory: call it for each one you need)."""

    def make(prefix: str = "t") -> str:
        return pg_cluster.create_database(f"{prefix}_{os.getpid()}_{next(_db_names)}")

    return make


def run_cli(url: str, *args: str, redis_url: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    """`flask --app wsgi indoor ...` as a user runs it, in a subprocess."""
    return flask_cli(url, *args, redis_url=redis_url, env=env)


@pytest.fixture(scope="session")
def direct_database_url(pg_cluster):
    """The shared test database: schema + the default demo campus (seed 1), reached directly."""
    url = pg_cluster.create_database("indoor_test")
    result = run_cli(url, "init-db", "--demo-if-empty")
    assert result.returncode == 0, result.stderr
    return url


@pytest.fixture(scope="session")
def pgbouncer(pg_cluster, workdir):
    """A pgbouncer (transaction pooling) in front of the session cluster."""
    bouncer = PgBouncer(pg_cluster.port, workdir, pool_mode="transaction", pool_size=40).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="session")
def database_url(direct_database_url, request):
    """The shared test database as the service reaches it: directly, or through pgbouncer."""
    if not VIA_PGBOUNCER:
        return direct_database_url
    return request.getfixturevalue("pgbouncer").via(direct_database_url)


@pytest.fixture(scope="session")
def served_url(request):
    """-> a function: a database URL on the session cluster as the service (and an import) reach
    it: through pgbouncer in the second pass of `make test`, else unchanged."""

    def via(url: str) -> str:
        return request.getfixturevalue("pgbouncer").via(url) if VIA_PGBOUNCER else url

    return via


@pytest.fixture(scope="session")
def redis_url(redis_server):
    return redis_server.url(0)


@pytest.fixture
def app(database_url, redis_url):
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "TESTING": True,
            "LOG_FORMAT": "text",
            **TEST_RATE_LIMITS,
        }
    )
    yield app
    database = app.extensions.get("indoor.db")
    if database:
        database.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@contextmanager
def autocommit_sql(url: str):
    """A function that runs SQL on `url` on a connection of its own (autocommit), as psql would."""
    conn = psycopg2.connect(url)
    conn.autocommit = True

    def run(statement: str, params=None):
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else None

    try:
        yield run
    finally:
        conn.close()


@pytest.fixture
def sql(direct_database_url):
    """Run SQL on the test database, as psql would (see autocommit_sql)."""
    with autocommit_sql(direct_database_url) as run:
        yield run


@pytest.fixture
def service_connections(database_url, direct_database_url, request):
    """The connections a service (application_name 'indoor') holds to its first hop, each as its
    client address and port: PostgreSQL's backends, or pgbouncer's clients when it goes through
    pgbouncer. Apps an earlier test of this process made hold some too: compare with a set taken
    before the server under test started."""

    def clients() -> set:
        if VIA_PGBOUNCER:
            found = request.getfixturevalue("pgbouncer").admin("SHOW CLIENTS")
            return {(c["addr"], c["port"]) for c in found if c.get("application_name") == "indoor"}
        with psycopg2.connect(direct_database_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT client_addr::text, client_port FROM pg_stat_activity WHERE application_name = 'indoor'")
            return set(cur.fetchall())

    return clients


@pytest.fixture
def serve(database_url, redis_url, workdir):
    """Start the app under gunicorn + gevent as deployed: `serve(workers=1, **env)` -> server."""
    from scripts.services import GunicornServer

    servers = []

    def start(workers: int = 1, **env):
        environment = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            **TEST_RATE_LIMITS,
            **{k: str(v) for k, v in env.items()},
        }
        server = GunicornServer(environment, workers=workers)
        server.start(workdir / f"gunicorn-{server.port}.log")  # a log of its own: tests read it
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- the feature database (tests/feature_data.py): rooms and floor plan with a 2,345-room level ----


@pytest.fixture(scope="session")
def features_url(pg_cluster):
    from tests.feature_data import feature_database

    return feature_database(pg_cluster)


@pytest.fixture(scope="module")
def fclient(features_url):
    app = create_app({"DATABASE_URL": features_url, "TESTING": True, "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING"})
    yield app.test_client()
    app.extensions["indoor.db"].close()


# -- headless Chromium for the map page's tests (tests/browser.py launches it) -----------------------

BROWSER_TIMEOUT_MS = 30_000  # a page's waits: a stream of the demo campus ends well within it


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.browser import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    """`new_page(**context_options)`: a page in a fresh context (the usual viewport unless given;
    `locale=` sets its Accept-Language), closed after the test."""
    from tests.browser import VIEWPORT

    contexts = []

    def make(**options):
        context = browser.new_context(**{"viewport": VIEWPORT, **{k: v for k, v in options.items() if v is not None}})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(BROWSER_TIMEOUT_MS)
        return page

    yield make
    for context in contexts:
        context.close()
