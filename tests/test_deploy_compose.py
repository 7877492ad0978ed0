"""deploy/docker-compose.yml, deploy/.env.example and the pgbouncer image's entrypoint.

No Docker engine runs here: the compose file is parsed (PyYAML) and checked against what the
service reads, validated by `docker-compose config` (no daemon needed), and the pgbouncer
entrypoint runs with Debian's pgbouncer in front of the test cluster, as in its container.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess

import psycopg2
import pytest
import yaml

from scripts.services import _as_postgres, free_port, stop_process, wait_for_port
from tests.deploy_config import DEPLOY, ROOT, env_example_names, service_names

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
SERVICE_CONTAINERS = ("init-db", "demo", "app", "backup")  # the service image
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|DSN|KEY", re.I)
PASSWORD_IN_URL = re.compile(r"://[^/\s:@]+:[^@\s/]+@")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


def scalars(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from ((f"{key}.{k}" if k else str(key), v) for k, v in scalars(value))
    elif isinstance(node, list):
        for item in node:
            yield from scalars(item)
    else:
        yield "", node


def test_the_services_and_their_order(compose):
    services = compose["services"]
    assert set(services) == {"db", "pgbouncer", "redis", "init-db", "demo", "app", "nginx", "backup"}

    def waits_for(name):
        return {dep: cond["condition"] for dep, cond in services[name]["depends_on"].items()}

    assert waits_for("app") == {
        "init-db": "service_completed_successfully",
        "pgbouncer": "service_healthy",
        "redis": "service_healthy",
    }
    assert waits_for("nginx") == {"app": "service_healthy"}
    assert waits_for("pgbouncer") == {"db": "service_healthy"}
    assert waits_for("init-db") == {"db": "service_healthy"}
    assert waits_for("demo") == {"init-db": "service_completed_successfully"}
    # everything waited on for health has a health check
    for name, service in services.items():
        for dep, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health, which has no check"
    assert services["init-db"]["command"] == ["flask", "--app", "wsgi", "indoor", "init-db"]
    assert services["demo"]["command"][-2:] == ["init-db", "--demo-if-empty"]
    assert services["demo"]["profiles"] == ["demo"]
    for one_shot in ("init-db", "demo", "backup"):
        assert services[one_shot]["restart"] == "no"
    # the service is built from the repository's Dockerfile; nginx runs deploy/nginx.conf
    for name in SERVICE_CONTAINERS:
        assert services[name]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert services[name]["image"] == services["app"]["image"]
    assert "./nginx.conf:/etc/indoor/nginx.conf:ro" in services["nginx"]["volumes"]
    assert "server 127.0.0.1:8000;" in (DEPLOY / "nginx.conf").read_text()  # what nginx's command rewrites
    assert "server app:8000;" in services["nginx"]["command"][-1]


def test_the_app_reaches_postgres_through_pgbouncer_and_one_shots_directly(compose):
    services = compose["services"]
    assert services["app"]["environment"]["POSTGRES_HOST"] == "pgbouncer"
    assert services["app"]["environment"]["TRUSTED_PROXY_COUNT"] == "1"  # behind nginx
    for one_shot in ("init-db", "demo", "backup"):
        assert services[one_shot]["environment"]["POSTGRES_HOST"] == "db"
    pgbouncer_ini = (DEPLOY / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode = transaction$", pgbouncer_ini, re.M)


def test_the_service_containers_set_only_what_the_service_reads(compose):
    known = service_names()
    for name in SERVICE_CONTAINERS:
        service = compose["services"][name]
        assert service["env_file"] == ".env"
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets {unknown}, which the service does not read"
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"]


def test_env_example_lists_every_setting():
    active, commented = env_example_names()
    missing = service_names() - active - commented
    assert not missing, f"add {sorted(missing)} to deploy/.env.example"


def test_env_example_sets_nothing_unread(compose):
    active, commented = env_example_names()
    compose_text = COMPOSE_FILE.read_text()
    interpolated = set(re.findall(r"\$\{([A-Z0-9_]+)", compose_text))
    readers = service_names() | interpolated
    unread = {name for name in active | commented if name not in readers and not name.startswith("PGBOUNCER_")}
    assert not unread, f"deploy/.env.example has {unread}, which nothing reads"
    assert interpolated <= active, "every ${VAR} in the compose file has a value in .env.example"
    # pgbouncer settings given as PGBOUNCER_<NAME> are settings of pgbouncer.ini
    ini_names = set(re.findall(r"^;? ?([a-z_]+) =", (DEPLOY / "pgbouncer.ini").read_text(), re.M))
    for name in active | commented:
        if name.startswith("PGBOUNCER_"):
            assert name.removeprefix("PGBOUNCER_").lower() in ini_names, name


def test_health_checks_and_nginx_hosts_are_trusted(compose, database_url):
    """The app's health check calls 127.0.0.1:8000 and nginx passes the client's Host
    (`localhost` for the README's curl): .env.example's TRUSTED_HOSTS lets both in."""
    from indoor import create_app

    trusted = re.search(r"^TRUSTED_HOSTS=(.*)$", (DEPLOY / ".env.example").read_text(), re.M)[1]
    check = compose["services"]["app"]["healthcheck"]["test"][-1]
    probe = re.search(r"'http://([^/]+)(/[^']*)'", check)
    app = create_app({"DATABASE_URL": database_url, "TRUSTED_HOSTS": trusted, "TESTING": True, "LOG_FORMAT": "text"})
    try:
        client = app.test_client()
        assert client.get(probe[2], base_url=f"http://{probe[1]}").status_code == 200
        assert client.get("/api/health/ready", base_url="http://localhost").status_code == 200
        assert client.get("/api/health/", base_url="http://other.example").status_code == 400
    finally:
        app.extensions["indoor.db"].close()


def test_no_secret_in_the_compose_file(compose):
    for path, value in scalars(compose):
        if not isinstance(value, str):
            continue
        assert not PASSWORD_IN_URL.search(value), f"{path}: a password in a URL"
        if SECRET_KEY.search(path.rsplit(".", 1)[-1]):
            assert value.startswith("${"), f"{path}: a secret's value belongs in deploy/.env"
    text = (DEPLOY / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=change-me" in text  # a placeholder, not a password
    assert "deploy/.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_docker_compose_validates_the_file(tmp_path):
    """`docker-compose config` (Debian's docker-compose; no daemon) resolves and validates the
    file with .env.example as its .env, every profile included."""
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is installed by scripts/system-deps.sh --test"
    workdir = tmp_path / "deploy"
    shutil.copytree(DEPLOY, workdir, ignore=shutil.ignore_patterns(".env", "backups"))
    shutil.copy(DEPLOY / ".env.example", workdir / ".env")
    result = subprocess.run(
        [binary, "-f", str(workdir / "docker-compose.yml"), "--profile", "demo", "--profile", "tools", "config"],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == {"db", "pgbouncer", "redis", "init-db", "demo", "app", "nginx", "backup"}
    assert resolved["services"]["nginx"]["ports"][0]["published"] in (80, "80")
    assert resolved["services"]["app"]["environment"]["POSTGRES_PASSWORD"] == "change-me"  # from .env


@pytest.fixture
def compose_pgbouncer(pg_cluster, direct_database_url, workdir):
    """deploy/pgbouncer/entrypoint.sh as its container runs it (as `postgres`), in front of the
    test cluster, with a password it must check."""
    port = free_port()
    image = workdir / f"compose-pgbouncer-{port}"  # the image's files, where `postgres` can read them
    config_dir = image / "run"
    config_dir.mkdir(parents=True)
    entrypoint = shutil.copy(DEPLOY / "pgbouncer" / "entrypoint.sh", image / "entrypoint.sh")
    template = shutil.copy(DEPLOY / "pgbouncer.ini", image / "pgbouncer.ini")
    if os.geteuid() == 0:
        os.chown(config_dir, pwd.getpwnam("postgres").pw_uid, -1)
    env = {
        "POSTGRES_DB": direct_database_url.rsplit("/", 1)[1],
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": 'pass"word with spaces',
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(pg_cluster.port),
        "PGBOUNCER_TEMPLATE": str(template),
        "PGBOUNCER_CONFIG_DIR": str(config_dir),
        "PGBOUNCER_LISTEN_ADDR": "127.0.0.1",
        "PGBOUNCER_LISTEN_PORT": str(port),
        "PGBOUNCER_MAX_CLIENT_CONN": "123",
        "PGBOUNCER_ADMIN_USERS": "postgres",
        "PATH": os.environ["PATH"] + ":/usr/sbin",
    }
    proc = subprocess.Popen(
        _as_postgres(["env", *[f"{k}={v}" for k, v in env.items()], str(entrypoint)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=15)
        yield port, env
    finally:
        stop_process(proc)


def test_pgbouncer_entrypoint(compose_pgbouncer):
    port, env = compose_pgbouncer
    dsn = dict(host="127.0.0.1", port=port, user="postgres", password=env["POSTGRES_PASSWORD"])
    with psycopg2.connect(dbname=env["POSTGRES_DB"], **dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM room_points")  # the database behind it, with the demo building
        assert cur.fetchone()[0] > 0
    with pytest.raises(psycopg2.OperationalError, match="authentication failed"):
        psycopg2.connect(dbname=env["POSTGRES_DB"], **{**dsn, "password": "wrong"})
    admin = psycopg2.connect(dbname="pgbouncer", **dsn)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SHOW CONFIG")
            config = {row[0]: row[1] for row in cur.fetchall()}
    finally:
        admin.close()
    assert config["pool_mode"] == "transaction"  # from deploy/pgbouncer.ini
    assert config["auth_type"] == "scram-sha-256"
    assert config["max_client_conn"] == "123"  # PGBOUNCER_MAX_CLIENT_CONN over the file
