"""Change events (indoor/live/events.py): written by triggers (schema.py LIVE), read by polls."""

from __future__ import annotations

_EVENT_JSON = "(jsonb_build_object('id', id, 'kind', kind, 'action', action, 'building', building) || payload)::text"

# New events after `after`, and any of `gaps` (ids skipped because their transaction had not
# committed yet when a later one was read), oldest first; then when the next closure boundary is.
POLL = f"""
SELECT id, building, {_EVENT_JSON} FROM indoor_events
 WHERE id > %(after)s OR id = ANY(%(gaps)s::bigint[])
 ORDER BY id LIMIT 1000
"""  # noqa: S608 - constant fragments

NEXT_BOUNDARY = """
SELECT extract(epoch FROM min(t))::float8 FROM (
  SELECT starts_at AS t FROM indoor_closures WHERE deleted_at IS NULL AND starts_at > now()
  UNION ALL
  SELECT ends_at FROM indoor_closures WHERE deleted_at IS NULL AND ends_at > now()) boundaries
"""

# A client resuming after `after`: what it missed (for its building and every building's).
REPLAY = f"""
SELECT id, building, {_EVENT_JSON} FROM indoor_events
 WHERE id > %(after)s AND (%(building)s::text IS NULL OR building IS NULL OR building = %(building)s)
 ORDER BY id LIMIT 10000
"""  # noqa: S608 - constant fragments

BOUNDS = "SELECT min(id), max(id) FROM indoor_events"

# Closures whose start or end has passed (within a day) write their event once (`once`).
SWEEP = """
SELECT count(indoor_closure_event(c, CASE WHEN c.ends_at <= now() THEN 'ended' ELSE 'opened' END))
  FROM indoor_closures c
 WHERE c.deleted_at IS NULL
   AND ((c.starts_at <= now() AND c.starts_at > now() - interval '1 day' AND (c.ends_at IS NULL OR c.ends_at > now()))
        OR (c.ends_at <= now() AND c.ends_at > now() - interval '1 day'))
"""

EXPIRE = "DELETE FROM indoor_events WHERE created_at < now() - make_interval(secs => %(retention_s)s)"


def poll(cur, after: int, gaps: list[int]) -> tuple[list[tuple], float | None]:
    cur.execute(POLL, {"after": after, "gaps": gaps})
    rows = cur.fetchall()
    cur.execute(NEXT_BOUNDARY)
    return rows, cur.fetchone()[0]


def replay(cur, after: int, building: str | None) -> tuple[list[tuple], int | None, int | None]:
    """(events after `after`, the oldest and newest ids kept)."""
    cur.execute(BOUNDS)
    oldest, newest = cur.fetchone()
    cur.execute(REPLAY, {"after": after, "building": building})
    return cur.fetchall(), oldest, newest


def latest(cur) -> int:
    cur.execute(BOUNDS)
    return int(cur.fetchone()[1] or 0)


def sweep(cur) -> None:
    cur.execute(SWEEP)


def expire(cur, retention_s: int) -> None:
    cur.execute(EXPIRE, {"retention_s": retention_s})
