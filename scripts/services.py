"""Throwaway PostgreSQL (PostGIS + pgRouting) and Redis servers on free ports.

Used by the test harness (tests/conftest.py), `make run` (a cluster under .data/) and
`make bench`. Debian's packages provide the binaries; PostgreSQL refuses to run as root, so
as root the cluster runs as the `postgres` system user.
"""

from __future__ import annotations

import configparser
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql-15-postgis-3)")
    return Path(candidates[-1])


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _let_others_traverse(path: Path) -> None:
    """The cluster runs as `postgres`: it must be able to reach its data dir (e.g. in a 0700 mktemp)."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            os.chmod(directory, mode | 0o001)


def stop_process(proc: subprocess.Popen | None, grace_s: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Ask a child to stop with `sig`; kill it if it has not stopped after `grace_s`."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def flask_cli(
    url: str, *args: str, redis_url: str = "", timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`flask --app wsgi indoor ...` against `url`, in a subprocess, as a user runs it."""
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "LOG_FORMAT": "text", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "indoor", *args],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class PostgresCluster:
    """A cluster in `datadir`, listening on 127.0.0.1:`port` with trust auth."""

    def __init__(self, datadir: str | Path, port: int | None = None, settings: dict | None = None):
        self.datadir = Path(datadir).absolute()
        self.port = port or free_port()
        self.bindir = pg_bindir()
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.datadir),
            "max_connections": "400",
            "shared_buffers": "128MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "replica",
            "max_wal_senders": "5",
            **(settings or {}),
        }

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def logfile(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.log"

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _prepare_datadir(self) -> None:
        """An empty data dir (0700, as PostgreSQL demands) that the `postgres` user owns and can reach."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.datadir, 0o700)
        self._chown(self.datadir)
        if os.geteuid() == 0:
            _let_others_traverse(self.datadir.parent)

    def init(self) -> PostgresCluster:
        if (self.datadir / "PG_VERSION").exists():
            return self
        self._prepare_datadir()
        subprocess.run(
            _as_postgres(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def start(self) -> PostgresCluster:
        self.logfile.touch()
        self._chown(self.logfile)
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items()) + f" -p {self.port}"
        subprocess.run(
            _as_postgres(
                [
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def stop(self, mode: str = "fast") -> None:
        if not (self.datadir / "postmaster.pid").exists():
            return
        subprocess.run(
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def is_running(self) -> bool:
        result = subprocess.run(
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return result.returncode == 0

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", self.url(dbname), "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(self.url())
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if not cur.fetchone():
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.url(name)


class RedisServer:
    def __init__(self, port: int | None = None, workdir: str | Path | None = None):
        self.port = port or free_port()
        self.workdir = Path(workdir) if workdir else None
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        cmd = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.workdir:
            cmd += ["--dir", str(self.workdir)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class GunicornServer:
    """The app as deployed: gunicorn with gevent workers, from config/gunicorn.conf.py."""

    def __init__(
        self,
        env: dict,
        workers: int = 1,
        port: int | None = None,
        root: str | Path | None = None,
        app: str = "wsgi:app",  # tests may serve a wrapper app (e.g. with a test-only page)
    ):
        self.app = app
        self.port = port or free_port()
        self.root = Path(root or Path(__file__).resolve().parent.parent)
        self.env = {
            **os.environ,
            "LOG_FORMAT": "json",
            "ENVIRONMENT": "development",  # tests and the bench answer any Host unless they say
            **env,
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
        }
        self.proc: subprocess.Popen | None = None
        self.log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, logfile: str | Path | None = None) -> GunicornServer:
        gunicorn = Path(os.environ.get("VIRTUAL_ENV", self.root / ".venv")) / "bin" / "gunicorn"
        if not gunicorn.exists():
            gunicorn = Path(shutil.which("gunicorn") or "gunicorn")
        self.logfile = Path(logfile) if logfile else None
        started_lines = (
            len(self.logfile.read_text(errors="replace").splitlines()) if logfile and self.logfile.exists() else 0
        )
        self.log = open(logfile, "ab") if logfile else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(gunicorn), "-c", "config/gunicorn.conf.py", self.app],
            cwd=self.root,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=60)
        if self.logfile is not None and self.env.get("LOG_LEVEL", "info").lower() in ("debug", "info"):
            self.wait_ready(started_lines)  # (a quieter log does not say it)
        return self

    def wait_ready(self, after_line: int = 0, timeout: float = 60.0) -> None:
        """Until every worker has said "worker ready" in the log (gunicorn.conf.py): the arbiter
        listens before its workers have loaded the app, and a worker told to stop before it has
        set its signal handlers misses the signal."""
        deadline = time.monotonic() + timeout
        wanted = int(self.env.get("WEB_CONCURRENCY", "1"))
        while time.monotonic() < deadline:
            lines = self.logfile.read_text(errors="replace").splitlines()[after_line:]
            if sum("worker ready" in line for line in lines) >= wanted:
                return
            if self.proc is not None and self.proc.poll() is not None:
                return  # it stopped: the caller sees that for itself
            time.sleep(0.05)
        raise TimeoutError(f"gunicorn's workers were not ready after {timeout}s (see {self.logfile})")

    def worker_pids(self) -> set[int]:
        """The arbiter's live worker processes."""
        if not self.proc:
            return set()
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return {int(pid) for pid in children.read_text().split()}
        except FileNotFoundError:
            return set()

    def stop(self) -> None:
        stop_process(self.proc, grace_s=25)
        self.proc = None
        if self.log not in (None, subprocess.DEVNULL):
            self.log.close()


def make_replica(primary: PostgresCluster, datadir: str | Path, port: int | None = None) -> PostgresCluster:
    """A streaming replica of `primary`: `pg_basebackup -R` into `datadir` (not started)."""
    replica = PostgresCluster(datadir, port=port, settings={"hot_standby": "on"})
    replica._prepare_datadir()
    subprocess.run(
        _as_postgres(
            [
                str(primary.bindir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                str(replica.datadir),
                "-R",  # standby.signal + primary_conninfo: it starts as a streaming replica
                "-X",
                "stream",
                "-c",
                "fast",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return replica


class PgBouncer:
    """Debian's pgbouncer in front of a cluster on 127.0.0.1:`backend_port`, any database by name.

    Its settings are deploy/pgbouncer.ini's, but for what a throwaway instance must change:
    addresses, files, pool sizes, and trust authentication (`auth_type = any`: the test cluster
    trusts local connections anyway). It refuses to run as root, so as root it runs as `postgres`.
    """

    def __init__(
        self,
        backend_port: int,
        workdir: str | Path,
        port: int | None = None,
        pool_mode: str = "transaction",
        pool_size: int = 20,
        max_client_conn: int = 2000,
    ):
        self.backend_port = backend_port
        self.port = port or free_port()
        self.dir = Path(workdir).absolute() / f"pgbouncer-{self.port}"
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.proc: subprocess.Popen | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def via(self, url: str) -> str:
        """The same database as `url` (a URL on the backend), reached through this pgbouncer."""
        return self.url(url.rsplit("/", 1)[1])

    @property
    def logfile(self) -> Path:
        return self.dir / "pgbouncer.log"

    def start(self) -> PgBouncer:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _let_others_traverse(self.dir.parent)
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        config = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"), delimiters=("=",))
        config.optionxform = str  # keep names as written
        config.read(ROOT_DIR / "deploy" / "pgbouncer.ini")
        config["databases"] = {"*": f"host=127.0.0.1 port={self.backend_port} user=postgres"}
        settings = config["pgbouncer"]
        for name in ("auth_user", "auth_query", "stats_users"):
            settings.pop(name, None)
        settings.update(
            {
                "listen_addr": "127.0.0.1",
                "listen_port": str(self.port),
                "unix_socket_dir": "",
                "auth_type": "any",
                "auth_file": str(self.dir / "userlist.txt"),
                "admin_users": "postgres",
                "pool_mode": self.pool_mode,
                "default_pool_size": str(self.pool_size),
                "reserve_pool_size": "0",
                "max_client_conn": str(self.max_client_conn),
                "max_db_connections": "0",
                "logfile": str(self.logfile),
            }
        )
        with open(self.dir / "pgbouncer.ini", "w") as ini:
            config.write(ini)
        for path in [self.dir, *self.dir.iterdir()]:
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                os.chown(path, pw.pw_uid, pw.pw_gid)
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        self.proc = subprocess.Popen(
            _as_postgres([binary, str(self.dir / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    def admin(self, command: str) -> list[dict]:
        """A command on pgbouncer's admin console (`SHOW POOLS`, ...) -> rows as dicts."""
        import psycopg2

        conn = psycopg2.connect(self.url("pgbouncer"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(command)
                if not cur.description:
                    return []
                names = [c.name for c in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()

    def stop(self) -> None:
        stop_process(self.proc)  # runuser forwards SIGTERM to pgbouncer: "immediate shutdown"
        self.proc = None


class NginxServer:
    """Debian's nginx with the project's deploy/nginx.conf, pointed at `upstream_port`."""

    def __init__(self, site_conf: str, upstream_port: int, workdir: str | Path, port: int | None = None):
        self.port = port or free_port()
        self.dir = Path(workdir).absolute() / f"nginx-{self.port}"
        site = site_conf.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        if f"127.0.0.1:{upstream_port}" not in site or f"listen 127.0.0.1:{self.port}" not in site:
            raise ValueError("deploy/nginx.conf no longer has the upstream/listen lines this harness rewrites")
        self.site = site
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NginxServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o777)
        (self.dir / "site.conf").write_text(self.site)
        temp = {name: self.dir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        for path in temp.values():
            path.mkdir(exist_ok=True)
            os.chmod(path, 0o777)
        (self.dir / "nginx.conf").write_text(
            "\n".join(
                [
                    "daemon off;",
                    "worker_processes 1;",
                    f"pid {self.dir / 'nginx.pid'};",
                    f"error_log {self.dir / 'error.log'} warn;",
                    "events { worker_connections 1024; }",
                    "http {",
                    f"  access_log {self.dir / 'access.log'};",
                    *[f"  {name}_temp_path {path};" for name, path in temp.items()],
                    f"  include {self.dir / 'site.conf'};",
                    "}",
                    "",
                ]
            )
        )
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(self.port, timeout=15)
        except TimeoutError:
            self.proc.kill()
            raise RuntimeError(self.proc.communicate()[1].decode(errors="replace")) from None
        return self

    def stop(self) -> None:
        # Graceful, but not for long: a connection nginx lingers on (a refused request body)
        # holds a graceful quit for its lingering time. Then a fast shutdown (SIGTERM), which
        # takes the workers along; a SIGKILL of the master alone would leave them holding
        # their connections to the app.
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                stop_process(self.proc, grace_s=5.0, sig=signal.SIGTERM)
        self.proc = None
