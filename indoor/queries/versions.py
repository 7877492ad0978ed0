"""Versions bumped by triggers on the tables we read (see schema.py): cache keys use them."""

import psycopg2.errors

from indoor.db import DatabaseUnavailable

GRAPH_VERSION = "SELECT version FROM indoor_versions WHERE name = 'graph'"

# The versions the triggers bump, each with the time of its last change: (version, time) never
# repeats, even when a database is re-created under the same name and counts from 1 again, so
# cache keys built from it never meet entries of another database sharing the Redis.
VERSIONS = """
SELECT name, version, (extract(epoch FROM changed_at) * 1000000)::bigint
  FROM indoor_versions
 WHERE name IN ('graph', 'rooms', 'floor', 'closures')
"""


def graph_version(cur) -> int:
    try:
        cur.execute(GRAPH_VERSION)
    except psycopg2.errors.UndefinedTable:
        # A database init-db never ran on (or a restore in progress): not ready, not a bug here.
        raise DatabaseUnavailable("schema missing: run init-db") from None
    row = cur.fetchone()
    return int(row[0]) if row else 0


def versions(cur) -> dict:
    """{'graph': N, 'rooms': M, 'floor': F, 'graph_key': 'N-t', ...}."""
    cur.execute(VERSIONS)
    return read_versions(cur)


def read_versions(cur) -> dict:
    """versions() from the rows of VERSIONS just run on `cur` (alone or last of several)."""
    return versions_from_rows(cur.fetchall())


def versions_from_rows(rows) -> dict:
    """versions() from (name, version, changed) rows."""
    found = {}
    for name, version, changed in rows:
        found[name] = int(version)
        found[f"{name}_key"] = f"{version}-{changed}"
    for name in ("graph", "rooms", "floor", "closures"):
        found.setdefault(name, 0)
        found.setdefault(f"{name}_key", "0")
    return found
