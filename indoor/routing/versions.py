"""The data versions a worker trusts for ROUTE_VERSION_MAX_AGE_S: what every cache key names.

A worker keeps the versions it read for ROUTE_VERSION_MAX_AGE_S (0.5 s), and an edit by any
client (psql, QGIS, ogr2ogr) changes them, so within that time every key changes: a route
computed on an older graph sits under a key nobody asks for any more.
"""

from __future__ import annotations

import time

from flask import current_app

from indoor.extensions import get_db, get_settings
from indoor.queries.versions import versions

_VERSIONS = "indoor.route_versions"


def current_versions() -> dict:
    """queries.versions.versions(), read at most ROUTE_VERSION_MAX_AGE_S ago."""
    state = current_app.extensions.setdefault(_VERSIONS, {"at": float("-inf"), "versions": None})
    now = time.monotonic()
    if state["versions"] is None or now - state["at"] > get_settings().route_version_max_age_s:
        found = get_db().read(versions, timeout_ms=2000)
        remember(found, now)
    return state["versions"]


def remember(found: dict, read_at: float) -> None:
    """Keep versions read by a query that started at `read_at` (monotonic), if they are newer."""
    state = current_app.extensions.setdefault(_VERSIONS, {"at": float("-inf"), "versions": None})
    if read_at >= state["at"]:
        state["versions"], state["at"] = dict(found), read_at
