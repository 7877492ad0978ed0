"""Settings: one typed object, read once from the environment.

Every name here is documented in the README's Operations section. `Settings.from_env()`
is the only place that reads `os.environ`; tests build one with `Settings.from_env(overrides)`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit


class SettingsError(ValueError):
    """A setting that cannot be used: one line naming it, its value and what is allowed."""

    def __init__(self, name: str, value, allowed: str):
        shown = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
        super().__init__(f"invalid setting {name}={_without_password(shown)!r}: {allowed}")
        self.name = name


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


_PARSERS = {bool: _bool, int: int, float: float, str: str, tuple: _list}
_TYPE_WORDS = {bool: "must be true or false", int: "must be a whole number", float: "must be a number"}


@dataclass(frozen=True)
class Settings:
    # Database
    database_url: str = ""
    database_replica_urls: tuple = ()
    db_pool_size: int = 5
    db_pool_timeout_s: float = 5.0
    pg_connect_timeout: float = 3.0
    pg_statement_timeout_ms: int = 5000
    postgres_ssl_mode: str = "prefer"
    pg_keepalives_idle_s: int = 30
    # Cache and rate limits
    redis_url: str = ""
    redis_socket_timeout_s: float = 0.25
    redis_retry_s: float = 1.0
    route_cache_ttl_s: int = 3600
    route_local_cache_entries: int = 2000
    tile_cache_ttl_s: int = 3600
    ratelimit_enabled: bool = True
    ratelimit_default: str = "600/minute"
    ratelimit_route: str = "120/minute"
    ratelimit_tiles: str = "6000/minute"
    ratelimit_storage_url: str = ""  # default: REDIS_URL with the next DB number
    # HTTP
    trusted_proxy_count: int = 0
    cors_origins: tuple = ()
    trusted_hosts: tuple = ()
    environment: str = "production"  # "development": gunicorn may start without TRUSTED_HOSTS
    public_url: str = ""  # scheme://host[/prefix] clients use; `next` links start with it
    sse_batch_size: int = 500
    sse_heartbeat_s: float = 15.0
    sse_retry_ms: int = 3000
    sse_pool_wait_s: float = 60.0
    sse_readahead_max_streams: int = 32
    sse_crowded_batch_size: int = 100
    # Routing model
    walking_speed_mps: float = 1.3
    stairs_penalty_s: float = 10.0
    escalator_penalty_s: float = 5.0
    elevator_penalty_s: float = 30.0
    route_version_max_age_s: float = 0.5
    route_window_tries: int = 3
    route_overlay: bool = True
    route_overlay_max_share: float = 0.1
    route_overlay_settle_s: float = 1.0
    route_overlay_min_interval_s: float = 5.0
    route_overlay_build_timeout_s: float = 600.0
    route_overlay_lock_timeout_s: float = 1.0
    route_cell_max_vertices: int = 20000
    route_cell_max_boundary: int = 64
    route_max_snap_m: float = 50.0
    route_max_length_m: float = 100000.0
    route_max_concurrent: int = 2
    route_queue_wait_s: float = 2.0
    route_index: bool = True
    route_index_load_timeout_s: float = 60.0
    route_index_dir: str = ""  # the machine's index files (index_store.py); default: under the temp dir
    # Live operation (indoor/live/): failed token attempts per client, change events
    auth_failures_limit: str = "20/minute"
    events_poll_s: float = 0.25
    events_retention_s: int = 7 * 24 * 3600
    events_max_stream_s: float = 3600.0
    # Observability
    sentry_dsn: str = ""
    sentry_traces_sample_rate: float = 0.0
    sentry_environment: str = "production"
    sentry_release: str = ""
    log_level: str = "INFO"
    log_format: str = "json"
    metrics_enabled: bool = False
    # Flask
    testing: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, overrides: dict | None = None, environ=None) -> Settings:
        """Read every field from its upper-case environment name, then apply overrides."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            raw = environ.get(f.name.upper())
            if raw is not None:
                parse = _PARSERS[type(f.default) if f.default is not dataclasses.MISSING else str]
                try:
                    values[f.name] = parse(raw)
                except ValueError:
                    raise SettingsError(f.name.upper(), raw, _TYPE_WORDS[type(f.default)]) from None
        if "database_url" not in values:
            values["database_url"] = _url_from_parts(environ)
        known = {f.name: f for f in dataclasses.fields(cls)}
        extra = {}
        for key, value in (overrides or {}).items():
            if key.lower() in known:
                default = known[key.lower()].default
                if isinstance(value, str) and not isinstance(default, str):
                    try:  # "a,b" -> ("a", "b"), "1" -> 1, as from env
                        value = _PARSERS[type(default)](value)
                    except ValueError:
                        raise SettingsError(key.upper(), value, _TYPE_WORDS[type(default)]) from None
                values[key.lower()] = value
            else:
                extra[key] = value  # plain Flask config (e.g. TESTING) passes through
        values["extra"] = extra
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Type, range and meaning of every field: a bad one raises SettingsError (create_app and
        config/gunicorn.conf.py turn it into one line and a non-zero exit, never a traceback)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = type(f.default) if f.default is not dataclasses.MISSING else dict
            accepted = {float: (int, float), tuple: (tuple, list)}.get(expected, expected)
            if not isinstance(value, accepted) or (expected in (int, float) and isinstance(value, bool)):
                raise SettingsError(f.name.upper(), value, _TYPE_WORDS.get(expected, f"must be a {expected.__name__}"))
        for name, (check, allowed) in _RULES.items():
            value = getattr(self, name)
            try:
                ok = check(value)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise SettingsError(name.upper(), value, allowed)


def _without_password(text: str) -> str:
    """A URL's password never reaches a log line."""
    parts = urlsplit(text) if "://" in text else None
    if parts is None or not parts.password:
        return text
    return text.replace(f":{parts.password}@", ":***@", 1)


def _finite(value) -> bool:
    return math.isfinite(value)


def _positive(value) -> bool:
    return math.isfinite(value) and value > 0


def _not_negative(value) -> bool:
    return math.isfinite(value) and value >= 0


def _url(schemes: tuple[str, ...]):
    def check(value: str) -> bool:
        parts = urlsplit(value)
        return parts.scheme in schemes and bool(parts.netloc or parts.path)

    return check


def _postgres_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("postgresql", "postgres") and bool(parts.hostname or parts.path.strip("/"))


def _rate_limit(value: str) -> bool:
    from limits import parse_many  # Flask-Limiter's own parser: what it cannot read, it ignores

    return bool(value.strip()) and bool(parse_many(value))


def _storage_url(value: str) -> bool:
    from limits.storage import SCHEMES

    return value == "" or (urlsplit(value).scheme in SCHEMES and "://" in value)


def _public_url(value: str) -> bool:
    if not value:
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment


def _origin(value: str) -> bool:
    if value == "*":
        return True
    parts = urlsplit(value.rstrip("/"))
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.path == "" and parts.port != 0


def _host(value: str) -> bool:
    """A host name or address, optionally with a port: maps.example.org, LOCALHOST:8080, [::1]:80."""
    parts = urlsplit(f"//{value}")
    return bool(parts.hostname) and parts.path == "" and not parts.username and parts.port != 0


def _sentry_dsn(value: str) -> bool:
    if not value:
        return True
    parts = urlsplit(value)
    return (
        parts.scheme in ("http", "https")
        and bool(parts.username)
        and bool(parts.hostname)
        and parts.path.rstrip("/").rsplit("/", 1)[-1].isdigit()
    )


_POSITIVE = "must be a number greater than 0"
_NOT_NEGATIVE = "must be a number of 0 or more"
_AT_LEAST_1 = "must be a whole number of 1 or more"
_RATE = "must be rate limits Flask-Limiter can read, such as 600/minute or 10/second;1000/hour"
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# name -> (check, what is allowed). Every field with a range or a meaning is here.
_RULES = {
    "database_url": (lambda v: v == "" or _postgres_url(v), "must be postgresql://user@host:port/database"),
    "database_replica_urls": (
        lambda v: all(_postgres_url(u) for u in v),
        "must be postgresql://user@host:port/database URLs, separated by commas",
    ),
    "db_pool_size": (lambda v: v >= 1, _AT_LEAST_1),
    "db_pool_timeout_s": (_positive, _POSITIVE),
    "pg_connect_timeout": (_positive, _POSITIVE),
    "pg_statement_timeout_ms": (lambda v: v >= 1, "must be a whole number of milliseconds, 1 or more"),
    "postgres_ssl_mode": (lambda v: v in _SSL_MODES, f"must be one of {', '.join(_SSL_MODES)}"),
    "pg_keepalives_idle_s": (lambda v: v >= 1, _AT_LEAST_1),
    "redis_url": (
        lambda v: v == "" or _url(("redis", "rediss", "unix"))(v),
        "must be redis://host:port/db, rediss://... or unix:///path",
    ),
    "redis_socket_timeout_s": (_positive, _POSITIVE),
    "redis_retry_s": (_not_negative, _NOT_NEGATIVE),
    "route_cache_ttl_s": (lambda v: v >= 1, "must be a whole number of seconds, 1 or more"),
    "route_local_cache_entries": (lambda v: v >= 0, "must be a whole number of 0 or more"),
    "tile_cache_ttl_s": (lambda v: v >= 0, "must be a whole number of seconds, 0 (no tile cache) or more"),
    "ratelimit_default": (_rate_limit, _RATE),
    "ratelimit_route": (_rate_limit, _RATE),
    "ratelimit_tiles": (_rate_limit, _RATE),
    "ratelimit_storage_url": (_storage_url, "must be a limits storage URL such as redis://host:port/1 or memory://"),
    "trusted_proxy_count": (lambda v: v >= 0, "must be a whole number of 0 or more"),
    "cors_origins": (lambda v: all(_origin(o) for o in v), "must be * or origins such as https://maps.example.org"),
    "trusted_hosts": (
        lambda v: all(_host(h) for h in v),
        "must be host names, each optionally with a port (maps.example.org,localhost:8000)",
    ),
    "environment": (lambda v: v in ("production", "development"), "must be production or development"),
    "public_url": (_public_url, "must be http(s)://host[/prefix]"),
    "sse_batch_size": (lambda v: v >= 1, _AT_LEAST_1),
    "sse_heartbeat_s": (_positive, _POSITIVE),
    "sse_retry_ms": (lambda v: v >= 0, "must be a whole number of 0 or more"),
    "sse_pool_wait_s": (_positive, _POSITIVE),
    "sse_readahead_max_streams": (lambda v: v >= 0, "must be a whole number of 0 or more"),
    "sse_crowded_batch_size": (lambda v: v >= 1, _AT_LEAST_1),
    "walking_speed_mps": (_positive, "must be a number of metres per second greater than 0"),
    "stairs_penalty_s": (_not_negative, "must be a number of seconds, 0 or more (penalties only add cost)"),
    "escalator_penalty_s": (_not_negative, "must be a number of seconds, 0 or more (penalties only add cost)"),
    "elevator_penalty_s": (_not_negative, "must be a number of seconds, 0 or more (penalties only add cost)"),
    "route_version_max_age_s": (_not_negative, _NOT_NEGATIVE),
    "route_window_tries": (lambda v: v >= 1, _AT_LEAST_1),
    "route_overlay_max_share": (_not_negative, "must be a number of 0 or more (a share: 0.1 is 10 %)"),
    "route_overlay_settle_s": (_not_negative, _NOT_NEGATIVE),
    "route_overlay_min_interval_s": (_not_negative, _NOT_NEGATIVE),
    "route_overlay_build_timeout_s": (_positive, _POSITIVE),
    "route_overlay_lock_timeout_s": (_positive, _POSITIVE),
    "route_cell_max_vertices": (lambda v: v >= 1, _AT_LEAST_1),
    "route_cell_max_boundary": (lambda v: v >= 1, _AT_LEAST_1),
    "route_max_snap_m": (_positive, "must be a number of metres greater than 0"),
    "route_index_load_timeout_s": (_positive, _POSITIVE),
    "route_index_dir": (lambda v: v == "" or os.path.isabs(v), "must be empty or an absolute directory path"),
    "route_max_length_m": (_positive, "must be a number of metres greater than 0"),
    "route_max_concurrent": (lambda v: v >= 1, _AT_LEAST_1),
    "route_queue_wait_s": (_not_negative, _NOT_NEGATIVE),
    "sentry_dsn": (_sentry_dsn, "must be empty or a Sentry DSN such as https://key@o1.ingest.sentry.io/123"),
    "sentry_traces_sample_rate": (lambda v: _finite(v) and 0 <= v <= 1, "must be a number from 0 to 1"),
    "log_level": (lambda v: v.upper() in _LOG_LEVELS, f"must be one of {', '.join(_LOG_LEVELS)}"),
    "log_format": (lambda v: v in ("json", "text"), "must be json or text"),
}


def _url_from_parts(environ) -> str:
    """DATABASE_URL may instead be given as POSTGRES_HOST/PORT/DB/USER/PASSWORD."""
    if not environ.get("POSTGRES_HOST") and not environ.get("POSTGRES_DB"):
        return ""
    user = quote(environ.get("POSTGRES_USER", "postgres"), safe="")
    password = environ.get("POSTGRES_PASSWORD")
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = environ.get("POSTGRES_HOST", "localhost")
    port = environ.get("POSTGRES_PORT", "5432")
    db = quote(environ.get("POSTGRES_DB", "indoor"), safe="")
    return f"postgresql://{auth}@{host}:{port}/{db}"
