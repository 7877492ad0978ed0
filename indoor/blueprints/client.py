"""The map page: `GET /` and its assets under `/assets/`, built into `indoor/client/dist/` by
`make client` (the page's own files plus MapLibre's, from the npm package); its words, the `page`
catalogue of each language, at `/assets/messages/<tag>.json`."""

import hashlib
from pathlib import Path

from flask import Blueprint, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import NotFound as NoSuchFile

from indoor import i18n
from indoor.errors import ApiError, NotFound

CLIENT_DIST = Path(__file__).resolve().parent.parent / "client" / "dist"

# What the page may do: its own scripts, styles and module worker, requests to its own origin
# (fetch and EventSource), images it draws itself (data:/blob:). Nothing else, from nowhere else.
# MapLibre 6 starts its worker from maplibre-gl-worker.mjs on our origin, so no blob: worker.
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "worker-src 'self'",
        "connect-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# Module scripts must be served as JavaScript; the system's MIME table may not know `.mjs`.
_MIMETYPES = {".mjs": "text/javascript", ".map": "application/json", ".svg": "image/svg+xml"}

blueprint = Blueprint("client", __name__)


# The page's root element as built; `GET /` states the negotiated language in it (the scripts read
# it there: the CSP allows no inline script to hand it over otherwise).
_HTML_ROOT = '<html lang="en" dir="ltr">'


@blueprint.get("/")
def page():
    _require_build()
    tag = i18n.negotiate(request.args.get("lang"), request.accept_languages)
    html = (CLIENT_DIST / "index.html").read_text(encoding="utf-8")
    if _HTML_ROOT not in html:  # a build of another page: say so rather than serve it unlabelled
        raise ApiError(503, "unavailable", "the map client's index.html has no <html> root to label: run `make client`")
    html = html.replace(_HTML_ROOT, f'<html lang="{tag}" dir="{i18n.direction(tag)}">', 1)
    response = _revalidated(Response(html, mimetype="text/html"))
    return _language(response, tag, vary=True)


@blueprint.get("/assets/messages/<tag>.json")
def messages(tag: str):
    """The page's words in one language (msgid -> text). Exact tags only (the page asks for the
    tags it lists): one URL per language keeps the answers cacheable without Vary."""
    if tag not in i18n.LANGUAGES:
        raise NotFound(f"no language {tag!r}; languages: {', '.join(i18n.LANGUAGES)}")
    return _language(_revalidated(jsonify(i18n.page_messages(tag))), tag)


@blueprint.get("/assets/<path:name>")
def asset(name: str):
    return _send(name)


def _require_build():
    if not (CLIENT_DIST / "index.html").is_file():
        raise ApiError(503, "unavailable", "the map client is not built: run `make client`")


def _revalidated(response):
    """Revalidated on every load, like the files: a strong ETag of the body (one per language,
    since the body says the language), 304 when the browser has it."""
    response.headers["Cache-Control"] = "no-cache"
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response.make_conditional(request.environ)


def _language(response, tag: str, vary: bool = False):
    response.headers["Content-Language"] = tag
    if vary:  # the same URL answers in the language the browser asks for
        response.vary.add("Accept-Language")
    return response


def _send(name: str):
    _require_build()
    try:
        # Revalidated on every load (ETag, 304): the file names carry no version.
        response = send_from_directory(CLIENT_DIST, name, max_age=0, mimetype=_MIMETYPES.get(Path(name).suffix))
    except NoSuchFile:
        raise NotFound(f"no asset {name!r}") from None
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response
