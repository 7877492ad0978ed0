"""Every extension instance, created here and bound to an app in `init_app`.

Nothing here keeps the app: per-app state lives in `app.extensions`.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app
from flask_caching import Cache

from indoor.db import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

cache = Cache()


def init_app(app: Flask, settings) -> None:
    app.extensions["indoor.settings"] = settings
    init_cache(app, settings)
    init_db(app, settings)


# -- settings -----------------------------------------------------------------------------


def get_settings():
    return current_app.extensions["indoor.settings"]


# -- database -----------------------------------------------------------------------------


def init_db(app: Flask, settings) -> None:
    # Created per app, so per gunicorn worker (the app is never preloaded). Connects lazily.
    from indoor.queries.routing import warm_connection

    on_connect = [warm_connection]  # each new pooled connection loads pgRouting before a user needs it
    app.extensions["indoor.db"] = Database(settings, on_connect=on_connect) if settings.database_url else None


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


def cache_get(key: str):
    """A cache read that treats any cache failure as a miss."""
    try:
        return cache.get(key)
    except Exception as exc:
        log.warning("cache get failed: %s", type(exc).__name__)
        return None


def cache_get_many(*keys: str) -> list:
    """Several cache reads in one round trip; any cache failure is a miss for all of them."""
    try:
        return list(cache.get_many(*keys))
    except Exception as exc:
        log.warning("cache get failed: %s", type(exc).__name__)
        return [None] * len(keys)


def cache_set(key: str, value, timeout: int | None = None) -> bool:
    """A cache write that never fails the request."""
    try:
        return bool(cache.set(key, value, timeout=timeout))
    except Exception as exc:
        log.warning("cache set failed: %s", type(exc).__name__)
        return False


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
