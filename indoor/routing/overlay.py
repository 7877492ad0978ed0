"""Keeping the route overlay current: rebuilt in the background after the graph changes.

A route that finds the overlay missing or built for another graph version is answered by
search windows (exact, slower) and asks for a rebuild. One rebuild runs at a time per worker
(a thread: a greenlet under gunicorn's gevent workers), after ROUTE_OVERLAY_SETTLE_S so that a
burst of edits (a QGIS session saving) is built once. Across workers and hosts an advisory lock
lets one build while the others skip, and the last build's time (in the database) spaces
builds: at least ROUTE_OVERLAY_MIN_INTERVAL_S apart and four times as long as one takes. The
build is one transaction on the primary (queries/overlay.py); it waits at most
ROUTE_OVERLAY_LOCK_TIMEOUT_S for a lock another client holds (an open transaction that ran
ANALYZE, a LOCK TABLE), then gives up ("locked"): the next route that finds the overlay stale
asks again, after the usual spacing. Readers never wait for a build.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg2.errors
from flask import current_app

from indoor import metrics
from indoor.extensions import get_db, get_settings
from indoor.queries import overlay as queries
from indoor.routing.background import run_logged, start_once

log = logging.getLogger("indoor.overlay")

_STATE = "indoor.overlay_rebuild"
_TABLES = "indoor.overlay_tables"


def build_now(force: bool = False, min_interval_s: float | None = None):
    """Build the overlay for the current graph in this thread; what queries.overlay.build says,
    or "locked" when another client's lock outlasted ROUTE_OVERLAY_LOCK_TIMEOUT_S.

    With `min_interval_s`, not before that long after the last build started, nor before four
    times the last build's time has passed since it ended (whoever built it): under constant
    edits, builds take at most a fifth of a database core."""
    settings = get_settings()
    started = time.perf_counter()
    try:
        with get_db().transaction(timeout_ms=int(settings.route_overlay_build_timeout_s * 1000)) as cur:
            result = queries.build(
                cur,
                max_vertices=settings.route_cell_max_vertices,
                max_boundary=settings.route_cell_max_boundary,
                force=force,
                min_interval_s=min_interval_s,
                lock_timeout_ms=int(settings.route_overlay_lock_timeout_s * 1000),
            )
    except psycopg2.errors.SerializationFailure:
        # Another builder committed between this one's snapshot and its lock: it built it.
        result = "busy"
    except psycopg2.errors.LockNotAvailable:
        # Another client holds a lock on a table the build writes or reads: retry later.
        log.warning("route overlay not rebuilt: a lock held by another client (retried later)")
        result = "locked"
    except Exception:
        metrics.observe_overlay_build("failed")
        raise
    if not isinstance(result, queries.Built):
        metrics.observe_overlay_build(result)
    else:
        metrics.observe_overlay_build("built", time.perf_counter() - started)
        log.info(
            "route overlay built",
            extra={
                "graph_key": result.graph_key,
                "build_ms": round(result.build_ms, 1),
                "cells": result.cells,
                "edges_between_cells": result.edges_between_cells,
                "boundary_vertices": result.boundary_vertices,
                "shortcuts": result.shortcuts,
                "dissolved_cells": result.dissolved_cells,
            },
        )
    return result


def available(cur) -> bool:
    """Whether this database has the overlay's tables (init-db made them), remembered per worker;
    asked again every 10 s while it has not."""
    state = current_app.extensions.setdefault(_TABLES, {"exist": False, "at": float("-inf")})
    if not state["exist"] and time.monotonic() - state["at"] > 10.0:
        state["exist"], state["at"] = queries.tables_exist(cur), time.monotonic()
    return state["exist"]


def request_rebuild() -> bool:
    """Start a background rebuild unless one runs or ran too recently; whether one started."""
    settings = get_settings()
    if not settings.route_overlay:
        return False
    app = current_app._get_current_object()
    state = app.extensions.setdefault(_STATE, {"lock": threading.Lock(), "running": False, "not_before": 0.0})
    return start_once(state, "running", _rebuild, (app, state), "overlay-rebuild", not_before="not_before")


def _rebuild(app, state) -> None:
    settings = app.extensions["indoor.settings"]

    def rebuild():
        time.sleep(settings.route_overlay_settle_s)
        with app.app_context():
            build_now(min_interval_s=settings.route_overlay_min_interval_s)

    try:
        run_logged(log, rebuild, "route overlay not rebuilt", "route overlay rebuild failed")
    finally:
        with state["lock"]:
            state["running"] = False
            state["not_before"] = time.monotonic() + settings.route_overlay_min_interval_s
