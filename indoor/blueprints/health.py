"""Liveness and readiness probes."""

from flask import Blueprint, jsonify

from indoor.db import DatabaseUnavailable
from indoor.extensions import cache_status, get_db
from indoor.queries import versions

blueprint = Blueprint("health", __name__)


@blueprint.get("/")
def live():
    return jsonify(ok=True)


@blueprint.get("/ready")
def ready():
    cache = cache_status()
    try:
        graph_version = get_db().read(versions.graph_version, timeout_ms=1000, retries=1)
    except DatabaseUnavailable as exc:
        body = {"ok": False, "database": exc.why, "cache": cache}
        return jsonify(body), 503
    return jsonify(ok=True, database="ok", cache=cache, graph_version=graph_version)
