"""Versions bumped by triggers on the tables we read (see schema.py): cache keys use them."""

import psycopg2.errors

from indoor.db import DatabaseUnavailable

GRAPH_VERSION = "SELECT version FROM indoor_versions WHERE name = 'graph'"

VERSIONS = "SELECT name, version FROM indoor_versions WHERE name IN ('graph', 'rooms')"


def graph_version(cur) -> int:
    try:
        cur.execute(GRAPH_VERSION)
    except psycopg2.errors.UndefinedTable:
        # A database init-db never ran on (or a restore in progress): not ready, not a bug here.
        raise DatabaseUnavailable("schema missing: run init-db") from None
    row = cur.fetchone()
    return int(row[0]) if row else 0


def versions(cur) -> dict[str, int]:
    """{'graph': N, 'rooms': M}: one round trip for both."""
    cur.execute(VERSIONS)
    return {name: int(version) for name, version in cur.fetchall()}
