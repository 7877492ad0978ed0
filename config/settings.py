"""Settings: one typed object, read once from the environment.

Every name here is documented in the README's Operations section. `Settings.from_env()`
is the only place that reads `os.environ`; tests build one with `Settings.from_env(overrides)`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit


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
    route_index: bool = True
    route_index_load_timeout_s: float = 60.0
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
                except ValueError as exc:
                    raise ValueError(f"{f.name.upper()}: {exc}") from None
        if "database_url" not in values:
            values["database_url"] = _url_from_parts(environ)
        known = {f.name: f for f in dataclasses.fields(cls)}
        extra = {}
        for key, value in (overrides or {}).items():
            if key.lower() in known:
                default = known[key.lower()].default
                if isinstance(value, str) and not isinstance(default, str):
                    value = _PARSERS[type(default)](value)  # "a,b" -> ("a", "b"), "1" -> 1, as from env
                values[key.lower()] = value
            else:
                extra[key] = value  # plain Flask config (e.g. TESTING) passes through
        values["extra"] = extra
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.environment not in ("production", "development"):
            raise ValueError(f"ENVIRONMENT: must be production or development, not {self.environment!r}")
        if self.public_url:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError(f"PUBLIC_URL: must be http(s)://host[/prefix], not {self.public_url!r}")


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
