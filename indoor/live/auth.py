"""Bearer tokens for the write endpoints: `Authorization: Bearer <token>` with a scope.

Tokens are made by `flask indoor token create` (ops/cli.py): 32 random bytes, URL-safe, shown
once; the database keeps only their SHA-256 (a token is high-entropy, so a plain hash is as
good as a slow one and costs nothing per request). A request's token is hashed and looked up
by its digest, then the digests are compared with hmac.compare_digest (constant time).
Failed attempts count per client (the rate-limit storage): past AUTH_FAILURES_LIMIT the client
gets 429 before its token is even looked at. Nothing here logs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from functools import wraps

from flask import g, request
from limits import parse

from indoor.errors import ApiError, BadRequest
from indoor.extensions import client_address, get_db, get_limiter, get_settings
from indoor.queries import tokens as queries

log = logging.getLogger("indoor.auth")

SCOPES = ("closures:write",)
TOKEN_BYTES = 32
_QUERY_NAMES = ("token", "access_token", "api_key", "apikey", "key")


class Unauthorized(ApiError):
    def __init__(self, message: str):
        super().__init__(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="indoor"'})


class Forbidden(ApiError):
    def __init__(self, message: str):
        super().__init__(403, "forbidden", message)


def new_token() -> tuple[str, bytes]:
    """(the token to show once, the digest to store)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, digest(token)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _failures_limit():
    return parse(get_settings().auth_failures_limit)


def _too_many_failures() -> bool:
    try:
        return not get_limiter().limiter.test(_failures_limit(), "auth-failures", client_address())
    except Exception:  # noqa: BLE001 - the limiter's storage down must not lock everyone out
        return False


def _count_failure() -> None:
    try:
        get_limiter().limiter.hit(_failures_limit(), "auth-failures", client_address())
    except Exception:  # noqa: BLE001 - as above
        log.warning("auth failure not counted: rate-limit storage unavailable")


def _refuse(error: ApiError) -> ApiError:
    _count_failure()
    log.info("auth refused", extra={"status": error.status, "client": client_address()})
    return error


def authenticate(scope: str) -> str:
    """The name of the request's token if it may `scope`; else 400/401/403/429 (ApiError)."""
    if any(name in request.args for name in _QUERY_NAMES):
        raise BadRequest("a token in the query string is refused: send it as 'Authorization: Bearer <token>'")
    if _too_many_failures():
        raise ApiError(429, "rate_limited", "too many failed authentication attempts: try again later",
                       {"Retry-After": "60"})  # fmt: skip
    header = request.headers.get("Authorization", "")
    kind, _, presented = header.partition(" ")
    presented = presented.strip()
    if kind.lower() != "bearer" or not presented:
        raise _refuse(Unauthorized("this needs 'Authorization: Bearer <token>'"))
    if len(presented) > 256 or not presented.isascii():
        raise _refuse(Unauthorized("unknown token"))
    wanted = digest(presented)
    found = get_db().read(lambda cur: queries.find(cur, wanted))
    if found is None or not hmac.compare_digest(found.digest, wanted):
        raise _refuse(Unauthorized("unknown token"))
    if found.revoked:
        raise _refuse(Forbidden(f"token {found.name!r} is revoked"))
    if found.expired:
        raise _refuse(Forbidden(f"token {found.name!r} has expired"))
    if scope not in found.scopes:
        raise _refuse(Forbidden(f"token {found.name!r} lacks the scope {scope!r}"))
    with get_db().transaction(timeout_ms=2000) as cur:
        queries.touch(cur, found.name)
    return found.name


def require(scope: str):
    """A view decorator: the token's name is `g.token_name` inside the view."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            g.token_name = authenticate(scope)
            return view(*args, **kwargs)

        return wrapped

    return decorate
