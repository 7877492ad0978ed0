"""Bearer tokens (indoor/live/auth.py): only the SHA-256 of each token is stored."""

from __future__ import annotations

from dataclasses import dataclass

CREATE = """
INSERT INTO indoor_tokens (name, token_sha256, scopes, expires_at)
VALUES (%(name)s, %(digest)s, %(scopes)s::text[],
        CASE WHEN %(days)s::int IS NULL THEN NULL ELSE now() + make_interval(days => %(days)s::int) END)
ON CONFLICT (name) DO NOTHING
RETURNING name
"""

LIST = """
SELECT name, scopes, created_at, last_used_at, expires_at, revoked_at
  FROM indoor_tokens ORDER BY name
"""

REVOKE = "UPDATE indoor_tokens SET revoked_at = now() WHERE name = %(name)s AND revoked_at IS NULL RETURNING name"

# The token a digest names, and whether it is usable now (the database's clock decides expiry).
FIND = """
SELECT name, token_sha256, scopes, revoked_at IS NOT NULL, expires_at IS NOT NULL AND expires_at <= now()
  FROM indoor_tokens WHERE token_sha256 = %(digest)s
"""

# Once a minute at most per token: a write per request would serialise the writers.
TOUCH = """
UPDATE indoor_tokens SET last_used_at = now()
 WHERE name = %(name)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
"""


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes
    scopes: tuple[str, ...]
    revoked: bool
    expired: bool


def create(cur, name: str, digest: bytes, scopes: list[str], expires_days: int | None) -> bool:
    """False when a token of that name exists."""
    cur.execute(CREATE, {"name": name, "digest": digest, "scopes": list(scopes), "days": expires_days})
    return cur.fetchone() is not None


def listing(cur) -> list[tuple]:
    cur.execute(LIST)
    return cur.fetchall()


def revoke(cur, name: str) -> bool:
    cur.execute(REVOKE, {"name": name})
    return cur.fetchone() is not None


def find(cur, digest: bytes) -> Token | None:
    cur.execute(FIND, {"digest": digest})
    row = cur.fetchone()
    if row is None:
        return None
    return Token(row[0], bytes(row[1]), tuple(row[2] or ()), bool(row[3]), bool(row[4]))


def touch(cur, name: str) -> None:
    cur.execute(TOUCH, {"name": name})
