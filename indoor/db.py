"""The database pool: one per worker, cooperative under gevent, never raises PoolError.

Knows no table names. Queries run through `read(fn)`: a short transaction on a pooled
connection with the statement timeout set by `SET LOCAL` (works through pgbouncer in
transaction mode), retried once on a fresh connection when the pooled one turned out to be
dead (the database restarted). Every endpoint of this service only reads, so reads go to a
replica when replicas are configured, falling back to the primary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

import psycopg2
import psycopg2.extensions
from psycopg2 import pool as pgpool

log = logging.getLogger(__name__)
T = TypeVar("T")


# Every transaction of ours sets these with SET LOCAL (pgbouncer in transaction mode keeps no
# session settings). JIT off: PostgreSQL compiles a statement whose estimated cost passes
# jit_above_cost, and the listings' pages (a keyset scan with the row guards, costed far above
# what they read) paid 30 ms of compilation for 4 ms of work: 2,000 floor-plan features per page
# at 0.25x COPY. Our statements are short reads; none gains from JIT.
NO_JIT = "SET LOCAL jit = off"
SESSIONLESS_SETTINGS = "SET LOCAL statement_timeout = %s; " + NO_JIT


class _SettingsFirstCursor(psycopg2.extensions.cursor):
    """A cursor whose first statement carries the transaction's settings: sent as one simple query
    on a connection in autocommit, the SET LOCALs and the statement run as one implicit
    transaction (PostgreSQL's rule for a query string of several statements), so a read of one
    statement is one round trip instead of four (BEGIN, the settings, the statement, COMMIT)."""

    settings_first = ""

    def execute(self, query, vars=None):
        if self.settings_first:
            first, self.settings_first = self.settings_first, ""
            if not isinstance(query, str | bytes):
                query = query.as_string(self)
            query = (first.encode() + query) if isinstance(query, bytes) else first + query
        return super().execute(query, vars)


class DatabaseUnavailable(Exception):
    """The database could not answer: down, unreachable, pool exhausted, or timed out."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class DatabaseDeadline(Exception):
    """The server sent nothing for as long as we wait (a frozen server: SIGSTOP, a stuck disk or
    network). No cancel request follows: PQcancel blocks the whole process while the server does
    not answer; psycopg2 closes a connection whose wait callback failed instead."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


# Our own deadline on each wait for the server: the statement timeout (which the server enforces,
# when it runs) and this much for its answer to arrive.
WAIT_MARGIN_S = 1.0


# -- gevent -------------------------------------------------------------------------------


def gevent_active() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a requirement
        return False
    return monkey.is_module_patched("socket")


def gevent_wait_callback(conn, timeout=None):
    """psycopg2 wait callback that yields to the gevent hub (what psycogreen does).

    If the greenlet is interrupted (timeout, kill, client gone) while the server is still
    working, the query is cancelled so that it does not run on in the backend.
    """
    from gevent.socket import wait_read, wait_write

    # A wait limit set for this use of the connection (Database.read/transaction), else none.
    limit = getattr(conn, "wait_limit_s", None) if timeout is None else timeout
    silent = DatabaseDeadline(f"no answer within {limit:g} s") if limit is not None else None
    try:
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            if state == psycopg2.extensions.POLL_READ:
                wait_read(conn.fileno(), timeout=limit, timeout_exc=silent)
            elif state == psycopg2.extensions.POLL_WRITE:
                wait_write(conn.fileno(), timeout=limit, timeout_exc=silent)
            else:  # pragma: no cover
                raise psycopg2.OperationalError(f"bad poll state {state}")
    except DatabaseDeadline:
        raise  # never a cancel request to a server that does not answer
    except BaseException:
        try:
            conn.cancel()
        except Exception:
            pass
        raise


def make_cooperative() -> bool:
    """Install the gevent wait callback when (and only when) gevent has patched this process."""
    if not gevent_active():
        return False
    psycopg2.extensions.set_wait_callback(gevent_wait_callback)
    return True


# -- pool ---------------------------------------------------------------------------------


class _Connection(psycopg2.extensions.connection):
    """A connection that remembers whether the on-connect hooks ran on it."""

    ready = False
    wait_limit_s: float | None = None  # our deadline per wait for the server (gevent only)


class _LazyPool(pgpool.ThreadedConnectionPool):
    """ThreadedConnectionPool that connects on demand yet keeps up to `maxconn` open.

    The stock pool opens `minconn` connections in its constructor (a database that is down at
    worker start would kill the worker) and closes returned connections above `minconn`.
    Starting with min=0 and then setting min=max gives both lazy connects and no churn.
    """

    def __init__(self, size: int, **kwargs):
        super().__init__(0, size, **kwargs)
        self.minconn = size

    def discard_idle(self) -> int:
        """Close every idle connection: after one is found dead, the others are too."""
        with self._lock:
            idle, self._pool = self._pool, []
        for conn in idle:
            try:
                conn.close()
            except Exception:
                pass
        return len(idle)


class Endpoint:
    """One server (primary or replica) with its own pool and a short memory of failures."""

    def __init__(self, dsn: str, settings, on_connect: list[Callable]):
        self.dsn = dsn
        self.settings = settings
        self.on_connect = on_connect
        kwargs = {
            "dsn": dsn,
            "connect_timeout": max(1, int(round(settings.pg_connect_timeout))),
            "keepalives": 1,
            "keepalives_idle": settings.pg_keepalives_idle_s,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "application_name": "indoor",
            "connection_factory": _Connection,
        }
        if "sslmode=" not in dsn:
            kwargs["sslmode"] = settings.postgres_ssl_mode
        self.pool = _LazyPool(settings.db_pool_size, **kwargs)
        self.down_until = 0.0  # skip a replica that just failed, for a moment

    def checkout(self):
        timeout = self.settings.pg_connect_timeout
        if gevent_active():
            # With the wait callback installed libpq's connect_timeout is not enforced.
            import gevent

            with gevent.Timeout(timeout, DatabaseUnavailable("connect timed out")):
                conn = self.pool.getconn()
        else:
            conn = self.pool.getconn()
        if not conn.ready:
            try:
                conn.autocommit = False
                for hook in self.on_connect:
                    hook(conn)
                conn.commit()
            except BaseException:
                self.pool.putconn(conn, close=True)
                raise
            conn.ready = True
        return conn

    def checkin(self, conn, broken: bool = False):
        if not broken and conn.closed == 0:
            status = conn.info.transaction_status
            if status == psycopg2.extensions.TRANSACTION_STATUS_ACTIVE:
                broken = True  # a query still running (interrupted): not reusable
            elif status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                try:
                    conn.rollback()
                except Exception:
                    broken = True
        self.pool.putconn(conn, close=broken or conn.closed != 0)


class Database:
    """What the app holds in `app.extensions["db"]`: primary + replicas + a bounded gate."""

    def __init__(self, settings, on_connect: list[Callable] | None = None, observe: Callable | None = None):
        if not settings.database_url:
            raise RuntimeError("DATABASE_URL (or POSTGRES_HOST/...) is not set")
        self.settings = settings
        self.on_connect = list(on_connect or [])
        self.primary = Endpoint(settings.database_url, settings, self.on_connect)
        self.replicas = [Endpoint(u, settings, self.on_connect) for u in settings.database_replica_urls]
        # getconn raises PoolError when empty; this gate makes callers wait instead, boundedly.
        # threading is gevent-patched inside gunicorn's gevent worker, so this is cooperative.
        # One gate for all endpoints: a checkout takes one slot on exactly one of them.
        self._gate = threading.BoundedSemaphore(settings.db_pool_size)
        self.waiting = 0
        self.in_use = 0
        # observe(name, delta) hears every change of `in_use`/`waiting` (metrics gauges).
        self.observe = observe
        self.closed = False
        if observe:
            observe("size", settings.db_pool_size)

    def close(self):
        for ep in [self.primary, *self.replicas]:
            ep.pool.closeall()
        # The size goes at once; `observe` stays, so a connection still checked out (a background
        # build) is counted back when it returns and the gauges end at zero.
        if self.observe and not self.closed:
            self.observe("size", -self.settings.db_pool_size)
        self.closed = True

    def stats(self) -> dict:
        return {"size": self.settings.db_pool_size, "in_use": self.in_use, "waiting": self.waiting}

    def _endpoints_for_read(self):
        now = time.monotonic()
        healthy = [r for r in self.replicas if r.down_until <= now]
        return [*healthy, self.primary]

    @contextmanager
    def connection(self, replica_ok: bool = True, wait_s: float | None = None):
        """Check out one connection, waiting up to DB_POOL_TIMEOUT_S for a free slot."""
        self._count("waiting", 1)
        try:
            acquired = self._gate.acquire(timeout=self.settings.db_pool_timeout_s if wait_s is None else wait_s)
        finally:
            self._count("waiting", -1)
        if not acquired:
            raise DatabaseUnavailable("no free database connection")
        self._count("in_use", 1)
        try:
            endpoints = self._endpoints_for_read() if replica_ok else [self.primary]
            conn, endpoint = self._connect_first(endpoints)
            conn.wait_limit_s = None
            broken = False
            try:
                yield conn
            except BaseException as exc:
                broken = _is_connection_error(exc, conn)
                if broken:
                    endpoint.pool.discard_idle()
                raise
            finally:
                endpoint.checkin(conn, broken=broken)
        finally:
            self._count("in_use", -1)
            self._gate.release()

    def _count(self, name: str, delta: int) -> None:
        setattr(self, name, getattr(self, name) + delta)
        if self.observe:
            self.observe(name, delta)

    def _connect_first(self, endpoints):
        last = None
        for ep in endpoints:
            try:
                return ep.checkout(), ep
            except (psycopg2.Error, DatabaseUnavailable) as exc:
                last = exc
                if ep is not self.primary:
                    ep.down_until = time.monotonic() + 2.0
                    log.warning("replica unavailable, skipping", extra={"why": str(exc)[:200]})
        raise DatabaseUnavailable(_short_reason(last)) from last

    def read(
        self,
        fn: Callable[..., T],
        *,
        timeout_ms: int | None = None,
        retries: int = 1,
        wait_s: float | None = None,
        unwanted: Callable[[], bool] | None = None,
        one_statement: bool = False,
    ) -> T | None:
        """Run `fn(cursor)` in a short read-only transaction and return what it returns.

        A connection that turns out dead is discarded and the call retried on a fresh one
        (reads are idempotent). Database trouble surfaces as DatabaseUnavailable. `wait_s`
        overrides DB_POOL_TIMEOUT_S for this call; `unwanted()` is asked once a connection is
        had: if it says the answer is no longer wanted, nothing runs and None is returned.
        `one_statement`: `fn` executes exactly one statement; it is sent with the settings in
        one round trip (_SettingsFirstCursor), which a stream's many pages notice.
        """
        timeout_ms = self.settings.pg_statement_timeout_ms if timeout_ms is None else timeout_ms
        attempt = 0
        while True:
            try:
                with self.connection(wait_s=wait_s) as conn:
                    if unwanted is not None and unwanted():
                        return None
                    conn.wait_limit_s = int(timeout_ms) / 1000 + WAIT_MARGIN_S
                    if one_statement:
                        return _one_statement(conn, fn, int(timeout_ms))
                    with conn.cursor() as cur:
                        cur.execute(SESSIONLESS_SETTINGS, (int(timeout_ms),))
                        result = fn(cur)
                    conn.commit()
                    return result
            except psycopg2.errors.QueryCanceled as exc:
                raise DatabaseUnavailable("statement timeout") from exc
            except DatabaseDeadline as exc:  # a frozen server: no retry, it would wait again
                raise DatabaseUnavailable(exc.why) from exc
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if attempt < retries:
                    attempt += 1
                    continue
                raise DatabaseUnavailable(_short_reason(exc)) from exc

    @contextmanager
    def transaction(self, timeout_ms: int | None = None):
        """A write transaction on the primary (CLI commands, closures, events). Commits on success.
        A statement past its timeout is DatabaseUnavailable, as for reads: a 503 with Retry-After
        in a request, never a 500."""
        with self.connection(replica_ok=False) as conn:
            if timeout_ms is not None:
                conn.wait_limit_s = int(timeout_ms) / 1000 + WAIT_MARGIN_S
            try:
                with conn.cursor() as cur:
                    if timeout_ms is not None:
                        cur.execute(SESSIONLESS_SETTINGS, (int(timeout_ms),))
                    else:
                        cur.execute(NO_JIT)
                    yield cur
                conn.commit()
            except psycopg2.errors.QueryCanceled as exc:
                raise DatabaseUnavailable("statement timeout") from exc


def _one_statement(conn, fn: Callable[..., T], timeout_ms: int) -> T:
    conn.autocommit = True
    try:
        with conn.cursor(cursor_factory=_SettingsFirstCursor) as cur:
            cur.settings_first = SESSIONLESS_SETTINGS % (int(timeout_ms),) + "; "
            return fn(cur)
    finally:
        if conn.closed == 0:
            conn.autocommit = False


def _is_connection_error(exc: BaseException, conn) -> bool:
    if conn.closed != 0:
        return True
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)) and not isinstance(
        exc, psycopg2.errors.QueryCanceled
    ):
        return conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_UNKNOWN
    # Interrupted mid-query (timeout, greenlet kill): the protocol state is unknown.
    return not isinstance(exc, Exception) or conn.info.transaction_status == (
        psycopg2.extensions.TRANSACTION_STATUS_ACTIVE
    )


def _short_reason(exc) -> str:
    """A one-line reason safe to show a client: never SQL text, never a DSN."""
    if exc is None:
        return "unavailable"
    if isinstance(exc, DatabaseUnavailable):
        return exc.why
    text = str(exc).lower()
    if "timeout" in text or "timed out" in text:
        return "connect timed out"
    if "refused" in text or "no such file" in text or "could not connect" in text:
        return "connection refused"
    if "shutting down" in text or "terminat" in text or "closed" in text:
        return "connection lost"
    if "starting up" in text or "recovery" in text:
        return "starting up"
    return "unavailable"
