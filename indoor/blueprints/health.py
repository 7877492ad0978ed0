"""Liveness and readiness probes."""

import logging

from flask import Blueprint, jsonify

from indoor.db import DatabaseUnavailable
from indoor.extensions import cache_status, get_db, get_settings
from indoor.queries import versions

blueprint = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@blueprint.get("/")
def live():
    return jsonify(ok=True)


@blueprint.get("/ready")
def ready():
    cache = cache_status()
    try:
        # A probe answers within a second, sooner when the configured statement timeout is shorter.
        timeout_ms = min(1000, get_settings().pg_statement_timeout_ms)
        graph_version = get_db().read(versions.graph_version, timeout_ms=timeout_ms, retries=1)
    except DatabaseUnavailable as exc:
        log.warning("not ready: database %s", exc.why)
        body = {"ok": False, "database": exc.why, "cache": cache}
        return jsonify(body), 503
    return jsonify(ok=True, database="ok", cache=cache, graph_version=graph_version)
