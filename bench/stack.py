"""What a bench run stands on: its own PostgreSQL and Redis (as `make test`), the campus, the
service under gunicorn + gevent as deployed, and the peer (tipg) in a venv of its own."""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

from bench.client import Http
from indoor.ops.demo import DemoSize
from scripts.services import GunicornServer, PostgresCluster, RedisServer, flask_cli, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".data" / "bench"
TIPG_VENV = CACHE / "tipg-venv"
TIPG_REQUIREMENTS = Path(__file__).resolve().parent / "tipg-requirements.txt"
REFERENCE_ROLE = "bench_reference"


def raise_fd_limit(wanted: int = 65536) -> int:
    """1,000 client sockets here and 1,000 in the worker (which inherits this limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def campus_size(cfg) -> tuple[int, dict]:
    """Buildings of `grid` x `grid` x `levels` needed for the wanted edges, rooms and features."""
    one = DemoSize(buildings=1, levels=cfg.levels, grid=cfg.grid)
    rooms_per_building = cfg.levels * (cfg.grid - 1) ** 2 * one.room_share * 0.98  # room_share is a draw
    features_per_building = cfg.levels * (2 * (cfg.grid - 1) ** 2 * one.room_share * 0.98 + 2)
    buildings = max(
        1,
        math.ceil(cfg.edges / one.estimated_edges()),
        math.ceil(cfg.rooms / rooms_per_building),
        math.ceil(cfg.features / features_per_building),
    )
    return buildings, {"grid": cfg.grid, "levels": cfg.levels, "buildings": buildings}


class ServerLog:
    """The service's JSON log lines written after this was made (every server the bench starts
    appends to the same file, one after another)."""

    def __init__(self, path: Path):
        self.path = path
        self.start = path.stat().st_size if path.exists() else 0

    def lines(self, message: str) -> list[dict]:
        with open(self.path, "rb") as f:
            f.seek(self.start)
            text = f.read().decode(errors="replace")
        marker = f'"message": "{message}"'
        return [json.loads(line) for line in text.splitlines() if line.startswith("{") and marker in line]


class Stack:
    def __init__(self, log=print):
        self.log = log
        self.workdir = Path(tempfile.mkdtemp(prefix="indoor-bench-"))
        os.chmod(self.workdir, 0o755)
        self.log_path = self.workdir / "gunicorn.log"  # every server's output (ServerLog reads it)
        self.cluster: PostgresCluster | None = None
        self.redis: RedisServer | None = None
        self.database_url = ""
        self.servers: list[GunicornServer] = []
        self.tipg: subprocess.Popen | None = None

    # -- database and cache -----------------------------------------------------------------

    def start_services(self) -> None:
        # pg_stat_statements: to tell how much of a route request the pgRouting statement takes.
        self.cluster = PostgresCluster(
            self.workdir / "pg",
            settings={"shared_preload_libraries": "pg_stat_statements", "shared_buffers": "256MB"},
        )
        self.cluster.init().start()
        self.database_url = self.cluster.create_database("indoor")
        self.redis = RedisServer(workdir=self.workdir).start()

    def connect(self, user: str | None = None):
        kwargs = {"user": user} if user else {}
        conn = psycopg2.connect(self.database_url, application_name="indoor-bench", **kwargs)
        conn.autocommit = True
        return conn

    def connect_reference(self):
        """The references' own role, so pg_stat_statements keeps their statements apart from the service's."""
        return self.connect(user=REFERENCE_ROLE)

    def flask_cli(self, *args: str) -> str:
        out = flask_cli(self.database_url, *args, timeout=1800)
        if out.returncode != 0:
            raise RuntimeError(f"indoor {args[0]} failed: {out.stderr.strip()[-800:]}")
        return out.stdout.strip()

    def generate_campus(self, cfg) -> dict:
        buildings, size = campus_size(cfg)
        started = time.perf_counter()
        self.flask_cli("init-db")
        init_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = self.flask_cli(
            "demo", "--seed", "1", "--grid", str(cfg.grid), "--levels", str(cfg.levels), "--buildings", str(buildings)
        )
        demo_s = time.perf_counter() - started
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            cur.execute(f"CREATE ROLE {REFERENCE_ROLE} LOGIN SUPERUSER")
            # Set hint bits and the visibility map once, so the first measured scan is not the one paying.
            started = time.perf_counter()
            for table in ("room_points", "base_floor", "nav_edges_final", "nav_edges_work_vertices_pgr"):
                cur.execute(f"VACUUM (ANALYZE) {table}")
            vacuum_s = time.perf_counter() - started
            cur.execute(
                """SELECT (SELECT count(*) FROM nav_edges_final), (SELECT count(*) FROM nav_edges_work_vertices_pgr),
                          (SELECT count(*) FROM room_points), (SELECT count(*) FROM base_floor),
                          (SELECT count(DISTINCT level) FROM room_points)"""
            )
            edges, vertices, rooms, features, levels = cur.fetchone()
        conn.close()
        return {
            **size,
            "edges": edges,
            "vertices": vertices,
            "rooms": rooms,
            "features": features,
            "distinct_levels": levels,
            "init_db_s": round(init_s, 2),
            "demo_s": round(demo_s, 2),
            "vacuum_s": round(vacuum_s, 2),
            "demo_output": summary,
        }

    # -- the service ------------------------------------------------------------------------

    def start_app(self, workers: int, **env) -> GunicornServer:
        environment = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url(0),
            # One client address sends everything here: the per-address limits would measure 429s.
            "RATELIMIT_ENABLED": "false",
            "ROUTE_INDEX_DIR": str(self.workdir / "route-index"),  # removed with the run
            **{k: str(v) for k, v in env.items()},
        }
        server = GunicornServer(environment, workers=workers).start(self.log_path)
        self.servers.append(server)
        self._wait_ready(server, workers)
        return server

    def _wait_ready(self, server: GunicornServer, workers: int) -> None:
        client = Http(server.base_url, timeout=10)
        deadline = time.monotonic() + 60
        while True:
            try:
                resp = client.get("/api/health/ready")
                if resp.status == 200:
                    break
            except OSError:
                client.close()  # a timed-out request leaves the connection unusable: a new one
            if time.monotonic() > deadline:
                raise RuntimeError(f"service not ready after 60 s (see {self.log_path})")
            time.sleep(0.2)
        # Every worker creates its app (and pool) on its first request: warm them all.
        for _ in range(workers * 20):
            Http(server.base_url).get("/api/health/ready")
        client.close()

    def stop_app(self, server: GunicornServer) -> None:
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    # -- the peer ---------------------------------------------------------------------------

    def ensure_tipg(self) -> Path:
        """tipg in its own venv (its FastAPI/pydantic stack must not meet ours), reused across runs."""
        stamp = TIPG_VENV / ".requirements-sha"
        wanted = hashlib.sha256(TIPG_REQUIREMENTS.read_bytes()).hexdigest()
        if not (stamp.exists() and stamp.read_text() == wanted):
            if TIPG_VENV.exists():
                shutil.rmtree(TIPG_VENV)
            CACHE.mkdir(parents=True, exist_ok=True)
            self.log(f"installing tipg into {TIPG_VENV} ...")
            base_python = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base_python, "-m", "venv", str(TIPG_VENV)], check=True)
            out = subprocess.run(
                [str(TIPG_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                 "-r", str(TIPG_REQUIREMENTS)],
                capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            if out.returncode != 0:
                raise RuntimeError("pip install tipg failed: " + out.stderr.strip()[-600:])
            stamp.write_text(wanted)
        return TIPG_VENV / "bin" / "uvicorn"

    def start_tipg(self, *tables: str) -> str:
        """tipg serving `tables` (default: the floor plan) as collections `public.<table>`."""
        uvicorn = self.ensure_tipg()
        port = free_port()
        names = ", ".join(f'"public.{table}"' for table in (tables or ("base_floor",)))
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "TIPG_DB_TABLES": f"[{names}]",
            "TIPG_DB_FUNCTIONS": "[]",
        }
        self.tipg = subprocess.Popen(
            [str(uvicorn), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=self.workdir,
            env=env,
            stdout=open(self.workdir / "tipg.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_port(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        client = Http(base)
        deadline = time.monotonic() + 60
        while client.get("/collections").status != 200:
            if time.monotonic() > deadline or self.tipg.poll() is not None:
                raise RuntimeError("tipg did not start: " + (self.workdir / "tipg.log").read_text()[-600:])
            time.sleep(0.3)
        return base

    def stop_tipg(self) -> None:
        if self.tipg and self.tipg.poll() is None:
            self.tipg.send_signal(signal.SIGTERM)
            try:
                self.tipg.wait(15)
            except subprocess.TimeoutExpired:
                self.tipg.kill()
                self.tipg.wait()
        self.tipg = None

    def close(self, keep: bool = False) -> None:
        for server in list(self.servers):
            self.stop_app(server)
        self.stop_tipg()
        if self.redis:
            self.redis.stop()
        if self.cluster:
            self.cluster.stop("immediate")
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
