"""Every extension instance, created here and bound to an app in `init_app`.

Nothing here keeps the app: per-app state lives in `app.extensions`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app, request
from flask_caching import Cache
from flask_limiter import HeaderNames, Limiter

from indoor.db import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

cache = Cache()


def init_app(app: Flask, settings) -> None:
    app.extensions["indoor.settings"] = settings
    # Uncached route computations at once in this worker (ROUTE_MAX_CONCURRENT); threading is
    # gevent-patched in the gevent worker, so waiting for a slot is cooperative.
    app.extensions["indoor.route_slots"] = threading.BoundedSemaphore(settings.route_max_concurrent)
    init_cache(app, settings)
    init_db(app, settings)
    init_limiter(app, settings)


# -- settings -----------------------------------------------------------------------------


def get_settings():
    return current_app.extensions["indoor.settings"]


def route_slots() -> threading.BoundedSemaphore:
    return current_app.extensions["indoor.route_slots"]


@contextmanager
def routes_computing():
    """Count this request among the routes the worker is computing or waiting to compute
    (computing_routes()), for as long as the block runs."""
    count = current_app.extensions.setdefault("indoor.routes_computing", [0])
    count[0] += 1
    try:
        yield
    finally:
        count[0] -= 1


def computing_routes() -> int:
    """How many routes this worker is computing or waiting to compute (the asking one included)."""
    return current_app.extensions.get("indoor.routes_computing", [0])[0]


# -- database -----------------------------------------------------------------------------


def init_db(app: Flask, settings) -> None:
    # Created per app, so per gunicorn worker (the app is never preloaded). Connects lazily.
    if not settings.database_url:
        app.extensions["indoor.db"] = None
        return
    from indoor import metrics
    from indoor.queries.routing import warm_connection

    # Each new pooled connection loads pgRouting before a user needs it.
    app.extensions["indoor.db"] = Database(settings, on_connect=[warm_connection], observe=metrics.observe_pool)


def get_db() -> Database:
    database = current_app.extensions.get("indoor.db")
    if database is None:
        raise DatabaseUnavailable("not configured")
    return database


# -- cache --------------------------------------------------------------------------------


def init_cache(app: Flask, settings) -> None:
    if settings.redis_url:
        config = {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": settings.redis_url,
            "CACHE_KEY_PREFIX": "indoor:",
            # redis-py waits forever by default: a hung Redis must cost a request milliseconds.
            "CACHE_OPTIONS": {
                "socket_timeout": settings.redis_socket_timeout_s,
                "socket_connect_timeout": settings.redis_socket_timeout_s,
                "health_check_interval": 10,
            },
        }
    else:
        config = {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 10000}
    config["CACHE_DEFAULT_TIMEOUT"] = settings.route_cache_ttl_s
    cache.init_app(app, config=config)
    app.extensions["indoor.cache_breaker"] = CacheBreaker(settings.redis_retry_s)
    app.extensions["indoor.local_cache"] = LocalCache(settings.route_local_cache_entries)


class CacheBreaker:
    """After a cache failure, skip the cache for REDIS_RETRY_S instead of paying a socket timeout
    on every call: a dead or hung Redis then costs one request one timeout, not each call of each
    request. Per app (so per worker); readiness still probes Redis itself."""

    def __init__(self, retry_s: float):
        self.retry_s = retry_s
        self.open_until = 0.0

    def allows(self) -> bool:
        return time.monotonic() >= self.open_until

    def trip(self, operation: str, exc: Exception) -> None:
        self.open_until = time.monotonic() + self.retry_s
        log.warning("cache %s failed (%s): cache skipped for %.1fs", operation, type(exc).__name__, self.retry_s)


def _guarded(operation: str, call, fallback):
    breaker = current_app.extensions.get("indoor.cache_breaker")
    if breaker is not None and not breaker.allows():
        return fallback
    try:
        return call()
    except Exception as exc:
        if breaker is not None:
            breaker.trip(operation, exc)
        return fallback


def cache_get(key: str):
    """A cache read that treats any cache failure as a miss."""
    return _guarded("get", lambda: cache.get(key), None)


def cache_get_many(*keys: str) -> list:
    """Several cache reads in one round trip; any cache failure is a miss for all of them."""
    return _guarded("get", lambda: list(cache.get_many(*keys)), [None] * len(keys))


def cache_set(key: str, value, timeout: int | None = None) -> bool:
    """A cache write that never fails the request."""
    return bool(_guarded("set", lambda: cache.set(key, value, timeout=timeout), False))


def cache_set_many(mapping: dict, timeout: int | None = None) -> bool:
    """Several cache writes in one round trip (a pipeline), never failing the request."""
    if not mapping:
        return True
    return bool(_guarded("set", lambda: cache.set_many(mapping, timeout=timeout), False))


class LocalCache:
    """A small per-worker LRU in front of Redis for the hottest answers (finished routes). Its
    keys carry the data versions, exactly like the Redis keys, so it is never staler than them."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()

    def get(self, key: str):
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def set(self, key: str, value) -> None:
        if self.max_entries <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def local_cache() -> LocalCache:
    return current_app.extensions["indoor.local_cache"]


def cache_status() -> str:
    """'ok' or 'unavailable' for the readiness probe."""
    settings = get_settings()
    if not settings.redis_url:
        return "ok"
    try:
        client = cache.cache._write_client  # Flask-Caching's RedisCache keeps the redis client here
        client.ping()
        return "ok"
    except Exception:
        return "unavailable"


# -- rate limits --------------------------------------------------------------------------

# Paths that are never limited: probes, the private metrics endpoint.
UNLIMITED_PATH_PREFIXES = ("/api/health", "/metrics")
# Other limits by path prefix -> the Settings field holding the limit (stricter for routes; looser
# for tiles, which a map asks for by the dozen). Blueprints need not
# know: a new blueprint mounted under one of these prefixes gets its limit from here.
STRICTER_LIMITS = {"/api/route": "ratelimit_route", "/api/tiles": "ratelimit_tiles"}


def client_address() -> str:
    """The rate-limit key: the client's address as ProxyFix left it (the real one behind nginx)."""
    return request.remote_addr or "unknown"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def limit_for_request() -> str:
    settings = get_settings()
    for prefix, field in STRICTER_LIMITS.items():
        if _under(request.path, prefix):
            return getattr(settings, field)
    return settings.ratelimit_default


def _unlimited() -> bool:
    return request.method == "OPTIONS" or any(_under(request.path, p) for p in UNLIMITED_PATH_PREFIXES)


def ratelimit_storage_url(settings) -> str:
    """RATELIMIT_STORAGE_URL, else REDIS_URL's server with the next DB number, else memory."""
    if settings.ratelimit_storage_url:
        return settings.ratelimit_storage_url
    if not settings.redis_url:
        return "memory://"
    parts = urlsplit(settings.redis_url)
    if parts.scheme not in ("redis", "rediss"):
        return settings.redis_url
    db = parts.path.strip("/")
    next_db = int(db) + 1 if db.isdigit() else 1
    return urlunsplit(parts._replace(path=f"/{next_db}"))


def init_limiter(app: Flask, settings) -> None:
    """One Limiter per app (its storage and fallback state are per app, not per process)."""
    storage_url = ratelimit_storage_url(settings)
    app.config.update(
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=storage_url,
        RATELIMIT_KEY_PREFIX="indoor",
    )
    options = {}
    if storage_url.startswith(("redis://", "rediss://")):
        # A dead or hung Redis must cost a request milliseconds; then limits go to memory.
        options = {
            "socket_timeout": settings.redis_socket_timeout_s,
            "socket_connect_timeout": settings.redis_socket_timeout_s,
        }
    # Flask-Limiter puts Retry-After on every response and stretches an existing one (a 503's
    # "1") to the window's end: it writes an internal header that only a 429 turns into Retry-After.
    app.after_request(_retry_after_only_when_limited)
    limiter = Limiter(
        key_func=client_address,
        default_limits=[limit_for_request],
        storage_options=options,
        headers_enabled=True,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        strategy="fixed-window",
        header_name_mapping={HeaderNames.RETRY_AFTER: _LIMITER_RETRY_AFTER},
    )
    limiter.request_filter(_unlimited)
    limiter.init_app(app)
    app.extensions["indoor.limiter"] = limiter


_LIMITER_RETRY_AFTER = "X-Indoor-Limiter-Retry-After"


def _retry_after_only_when_limited(response):
    value = response.headers.pop(_LIMITER_RETRY_AFTER, None)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(1, int(value))) if value and value.isdigit() else "1"
    return response


def get_limiter() -> Limiter:
    return current_app.extensions["indoor.limiter"]
