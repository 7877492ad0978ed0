"""Where the links in our answers point (OGC API - Features, TileJSON): never at a host a client chose.

A link is absolute only when its host is ours for sure: `PUBLIC_URL` when it is set, else the
request's own host when `TRUSTED_HOSTS` restricts it (a request naming another host is refused
with 400 before any link is built). Otherwise links are path-absolute (`/ogc/...`), which RFC 3986
clients resolve against the URL they fetched; reflecting an unchecked `Host` header would let
anyone who can put a response in a shared cache point other users' clients at their server.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import request

from indoor.extensions import get_settings


def public_base() -> str:
    """'https://maps.example.org' (no trailing slash), or '' for path-absolute links."""
    settings = get_settings()
    if settings.public_url:
        return settings.public_url.rstrip("/")
    if settings.trusted_hosts:
        return request.host_url.rstrip("/")  # request.host is checked against TRUSTED_HOSTS
    return ""


def absolute_available() -> bool:
    """True when public_base() gives an absolute URL (TileJSON 3.0 requires absolute tile URLs)."""
    settings = get_settings()
    return bool(settings.public_url or settings.trusted_hosts)


def link(path: str, args: list[tuple[str, str]] | None = None) -> str:
    """An href for `path` (which starts with '/') with the query `args`."""
    href = public_base() + path
    if args:
        href += "?" + urlencode(args)
    return href
