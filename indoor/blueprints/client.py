"""The map page: `GET /` and its assets under `/assets/`, built into `indoor/client/dist/` by
`make client` (the page's own files plus MapLibre's, from the npm package)."""

from pathlib import Path

from flask import Blueprint, send_from_directory
from werkzeug.exceptions import NotFound as NoSuchFile

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


@blueprint.get("/")
def page():
    return _send("index.html")


@blueprint.get("/assets/<path:name>")
def asset(name: str):
    return _send(name)


def _send(name: str):
    if not (CLIENT_DIST / "index.html").is_file():
        raise ApiError(503, "unavailable", "the map client is not built: run `make client`")
    try:
        # Revalidated on every load (ETag, 304): the file names carry no version.
        response = send_from_directory(CLIENT_DIST, name, max_age=0, mimetype=_MIMETYPES.get(Path(name).suffix))
    except NoSuchFile:
        raise NotFound(f"no asset {name!r}") from None
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response
