"""Faults survived under load, each against the real component: PostgreSQL restarted, Redis killed,
the primary stopped while a streaming replica stays up, a replica dying.

Destructive tests use clusters and Redis servers of their own, never the session ones.
Endpoints come from tests/endpoints.py: as endpoints are added there, these tests cover them.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass

import psycopg2
import pytest
import redis

from scripts.services import GunicornServer, PostgresCluster, RedisServer, make_replica
from tests.conftest import TEST_RATE_LIMITS, run_cli
from tests.endpoints import DATABASE_READS, NO_DATABASE, is_unavailable
from tests.http import get, get_json

pytestmark = pytest.mark.slow


@dataclass
class Answer:
    path: str
    started: float
    finished: float
    status: int
    body: object

    @property
    def duration(self) -> float:
        return self.finished - self.started


class Load:
    """`clients` threads requesting `paths` in turn, as fast as answers come, until stopped."""

    def __init__(self, base_url: str, paths: list[str], clients: int = 6, timeout: float = 15.0):
        self.base_url = base_url
        self.paths = paths
        self.timeout = timeout
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Clients start spread over the paths, so each path is asked for early even when answers are slow.
        offsets = [i * len(paths) // clients for i in range(clients)]
        self._threads = [threading.Thread(target=self._run, args=(o,), daemon=True) for o in offsets]

    def _run(self, offset: int):
        for path in itertools.islice(itertools.cycle(self.paths), offset, None):
            if self._stop.is_set():
                return
            started = time.monotonic()
            try:
                status, body = get_json(self.base_url + path, timeout=self.timeout)
            except Exception as exc:  # a refused or reset connection is an answer too: a failed one
                status, body = 0, repr(exc)
            with self._lock:
                self.answers.append(Answer(path, started, time.monotonic(), status, body))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def warm(self, answers: int = 30, timeout: float = 30.0) -> float:
        """Wait until the servers have answered `answers` requests (workers booted); -> now."""
        deadline = time.monotonic() + timeout
        while len(self.answers) < answers:
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.05)
        return time.monotonic()

    def between(self, start: float, end: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= start and a.finished <= end]

    def started_after(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= moment]


def _pause(seconds: float):
    time.sleep(seconds)
    return time.monotonic()


def _campus_cluster(directory) -> tuple[PostgresCluster, str]:
    cluster = PostgresCluster(directory).init().start()
    url = cluster.create_database("indoor")
    result = run_cli(url, "init-db", "--demo-if-empty")
    assert result.returncode == 0, result.stderr
    return cluster, url


@pytest.fixture(scope="module")
def own_cluster(workdir):
    cluster, url = _campus_cluster(workdir / "fault-pg")
    yield cluster, url
    cluster.stop("immediate")


@pytest.fixture
def gunicorn(workdir):
    servers = []

    def start(workers: int = 2, **env):
        environment = {**TEST_RATE_LIMITS, **{k: str(v) for k, v in env.items()}}
        server = GunicornServer(environment, workers=workers)
        server.start(workdir / f"gunicorn-{server.port}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _summary(answers: list[Answer]) -> dict:
    return {s: sum(1 for a in answers if a.status == s) for s in {a.status for a in answers}}


def test_postgresql_restarted_under_load(own_cluster, gunicorn, redis_url):
    cluster, url = own_cluster
    connect_timeout = 1
    server = gunicorn(workers=2, DATABASE_URL=url, REDIS_URL=redis_url, PG_CONNECT_TIMEOUT=connect_timeout)
    paths = DATABASE_READS + NO_DATABASE
    with Load(server.base_url, paths) as load:
        warm = load.warm()
        workers = server.worker_pids()
        assert len(workers) == 2
        cluster.stop("fast")  # a restart: every backend is terminated
        down = time.monotonic()
        outage_end = _pause(2.0)
        cluster.start()
        up = time.monotonic()
        _pause(4.0)

    before = load.between(0, warm)
    assert before and all(a.status == 200 for a in before), _summary(before)

    during = [a for a in load.between(down, outage_end) if a.path in DATABASE_READS]
    assert len(during) >= 10, "the outage saw too few requests to prove anything"
    # A 503 in the API's shape, never a 500 or a dropped connection. A route may still come from
    # the cache (200) while the versions it was checked against are fresh (ROUTE_VERSION_MAX_AGE_S).
    bad = [
        a
        for a in during
        if not is_unavailable(a.path, a.status, a.body)
        and not (a.path.startswith("/api/route/") and a.status == 200 and a.body["route"]["distance_m"] > 0)
    ]
    assert not bad, bad[:3]
    # ... and quickly: no request waits past the connect timeout (plus the one retry and some slack).
    assert max(a.duration for a in during) < 2 * connect_timeout + 1.0, max(a.duration for a in during)
    assert all(a.status == 200 for a in load.between(down, outage_end) if a.path in NO_DATABASE)

    healed = load.started_after(up + 2.0)
    first_ok = min(
        (a.finished for a in load.started_after(up) if a.path in DATABASE_READS and a.status == 200), default=0
    )
    print(
        f"postgres restart: {len(during)} requests during the outage, slowest {max(a.duration for a in during):.3f}s;"
        f" first database read OK {first_ok - up:.3f}s after the database was back"
    )
    assert len(healed) >= 20
    assert all(a.status == 200 for a in healed), _summary(healed)
    assert server.worker_pids() == workers, "the pool healed without a worker restart"


def test_a_database_that_accepts_but_never_answers_costs_the_connect_timeout(gunicorn, redis_url):
    # A half-dead host: the TCP connection is accepted, then silence (no startup reply ever).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)
    held = []
    stop = threading.Event()

    def accept_and_hold():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    acceptor = threading.Thread(target=accept_and_hold, daemon=True)
    acceptor.start()
    try:
        url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/indoor"
        server = gunicorn(workers=1, DATABASE_URL=url, REDIS_URL=redis_url, PG_CONNECT_TIMEOUT=1)
        with Load(server.base_url, DATABASE_READS + NO_DATABASE, clients=4, timeout=30) as load:
            load.warm(20)
            _pause(1.0)
        reads = [a for a in load.answers if a.path in DATABASE_READS]
        assert reads and all(is_unavailable(a.path, a.status, a.body) for a in reads), _summary(reads)
        # One connect timeout, and the one retry's: never the 30 s the clients would wait.
        assert max(a.duration for a in reads) < 2 * 1 + 1.0, max(a.duration for a in reads)
        others = [a for a in load.answers if a.path in NO_DATABASE]
        assert others and all(a.status == 200 for a in others)
        assert held, "the service did reach the silent database"
    finally:
        stop.set()
        acceptor.join()
        for conn in held:
            conn.close()
        silent.close()


def test_redis_killed_under_load(database_url, gunicorn, workdir):
    cache = RedisServer(workdir=workdir).start()
    try:
        server = gunicorn(workers=2, DATABASE_URL=database_url, REDIS_URL=cache.url(0))
        limits = redis.Redis.from_url(cache.url(1))  # rate-limit counters: the next DB number
        paths = DATABASE_READS + NO_DATABASE
        with Load(server.base_url, paths) as load:
            warm = load.warm()
            assert limits.keys("LIMITS*"), "rate limits are counted in Redis"
            cache.kill()  # SIGKILL
            killed = time.monotonic()
            readiness = get_json(server.base_url + "/api/health/ready")
            outage_end = _pause(2.0)
            cache = RedisServer(port=cache.port, workdir=workdir).start()  # back, empty
            back = time.monotonic()
            recovered = None
            while time.monotonic() < back + 30:
                if get_json(server.base_url + "/api/health/ready")[1].get("cache") == "ok" and limits.keys("LIMITS*"):
                    recovered = time.monotonic()
                    break
                time.sleep(0.2)

        assert all(a.status == 200 for a in load.between(0, warm))
        during = load.between(killed, outage_end)
        assert len(during) >= 20
        assert all(a.status == 200 for a in during), _summary(during)  # not a single failure
        assert readiness[0] == 200 and readiness[1]["cache"] == "unavailable"
        assert recovered is not None, "caching and rate-limit counting never resumed on the restarted Redis"
        print(f"redis killed: {len(during)} requests while down; limits back in Redis {recovered - back:.2f}s after")
        after = load.started_after(back)
        assert after and all(a.status == 200 for a in after), _summary(after)
        # Caching resumed: a route asked again comes from the restarted Redis (once each worker's
        # breaker, REDIS_RETRY_S, lets it try Redis again).
        route = server.base_url + "/api/route/?from=2&to=120&profile=accessible"
        first = get(route)
        assert first[0] == 200
        answers = []
        while time.monotonic() < back + 30 and not any(a[1]["X-Cache"] == "HIT" for a in answers):
            answers.append(get(route))
            time.sleep(0.1)
        hits = [a for a in answers if a[1]["X-Cache"] == "HIT"]
        assert hits and hits[0][0] == 200 and hits[0][2] == first[2], "caching never resumed"
    finally:
        cache.stop()


def test_redis_hung_costs_requests_little(database_url, gunicorn, workdir):
    cache = RedisServer(workdir=workdir).start()
    try:
        server = gunicorn(workers=1, DATABASE_URL=database_url, REDIS_URL=cache.url(0), REDIS_SOCKET_TIMEOUT_S=0.25)
        with Load(server.base_url, DATABASE_READS + NO_DATABASE, clients=4) as load:
            load.warm()
            os.kill(cache.proc.pid, signal.SIGSTOP)  # alive, listening, answering nothing
            hung = time.monotonic()
            readiness = get_json(server.base_url + "/api/health/ready")
            resumed = _pause(3.0)
            os.kill(cache.proc.pid, signal.SIGCONT)
        during = load.between(hung, resumed)
        assert len(during) >= 10
        assert all(a.status == 200 for a in during), _summary(during)
        assert readiness[0] == 200 and readiness[1]["cache"] == "unavailable"
        # Each answer waited for Redis at most a few socket timeouts, not forever.
        assert max(a.duration for a in during) < 2.0
        print(f"redis hung: {len(during)} requests, slowest {max(a.duration for a in during):.3f}s")
    finally:
        cache.stop()


@pytest.fixture(scope="module")
def primary_and_replica(workdir):
    primary, url = _campus_cluster(workdir / "repl-primary")
    replica = make_replica(primary, workdir / "repl-replica").start()
    replica_url = replica.url("indoor")
    deadline = time.monotonic() + 30
    while True:  # streaming, and has replayed the campus
        try:
            with psycopg2.connect(replica_url) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery(), count(*) FROM indoor_versions")
                if cur.fetchone()[0]:
                    break
        except psycopg2.Error:
            pass
        assert time.monotonic() < deadline, "the replica never came up"
        time.sleep(0.2)
    yield primary, url, replica, replica_url
    replica.stop("immediate")
    primary.stop("immediate")


def _backends(url: str) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'indoor'")
        return cur.fetchone()[0]


def test_reads_go_to_the_replica_and_survive_the_primary_stopping(primary_and_replica, gunicorn, redis_url):
    primary, url, replica, replica_url = primary_and_replica
    server = gunicorn(
        workers=1, DATABASE_URL=url, DATABASE_REPLICA_URLS=replica_url, REDIS_URL=redis_url, PG_CONNECT_TIMEOUT=1
    )
    paths = DATABASE_READS + NO_DATABASE
    assert all(get_json(server.base_url + p)[0] == 200 for p in paths)
    assert _backends(replica_url) >= 1 and _backends(url) == 0  # every endpoint only reads
    try:
        with Load(server.base_url, paths) as load:
            load.warm()
            primary.stop("fast")
            stopped = time.monotonic()
            _pause(3.0)
        during = load.started_after(stopped)
        assert len(during) >= 20
        assert all(a.status == 200 for a in during), _summary(during)
        with psycopg2.connect(replica_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            assert cur.fetchone()[0], "still a replica: reads were served by a standby without its primary"
    finally:
        primary.start()


def test_a_dead_replica_is_skipped(primary_and_replica, gunicorn, redis_url):
    primary, url, replica, replica_url = primary_and_replica
    server = gunicorn(
        workers=1, DATABASE_URL=url, DATABASE_REPLICA_URLS=replica_url, REDIS_URL=redis_url, PG_CONNECT_TIMEOUT=1
    )
    paths = DATABASE_READS + NO_DATABASE
    assert all(get_json(server.base_url + p)[0] == 200 for p in paths)
    try:
        with Load(server.base_url, paths) as load:
            load.warm()
            replica.stop("immediate")  # a crash: its pooled connections die mid-stream
            stopped = time.monotonic()
            _pause(3.0)
        during = load.started_after(stopped)
        assert len(during) >= 20
        assert all(a.status == 200 for a in during), _summary(during)
        assert _backends(url) >= 1  # the primary took the reads
    finally:
        replica.start()
