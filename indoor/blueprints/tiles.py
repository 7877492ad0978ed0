"""Vector tiles: `GET /api/tiles.json` (TileJSON 3.0) and `GET /api/tiles/<z>/<x>/<y>.mvt`.

A tile's ETag is its address and the data versions the triggers bump (rooms, floor plan,
graph), read in the same transaction before the tile: a matching If-None-Match costs one small
read and no rendering, and any committed edit changes every ETag at once.
"""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, request

from indoor import extents, links
from indoor.errors import BadRequest, NotFound
from indoor.extensions import get_db
from indoor.queries import tiles, versions

blueprint = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
# A building is ~40 px wide at 16 and a door a few px at 20; below 16 a tile of a large campus
# holds too much to draw, above 20 MapLibre overzooms the z20 tiles.
MIN_ZOOM = 16
MAX_ZOOM = 20
TILE_PATH = "/api/tiles/{z}/{x}/{y}.mvt"
# Clients keep tiles and revalidate them on every use (a 304 costs one small read), so an edit
# shows on the next redraw rather than after some max-age.
CACHE_CONTROL = "public, no-cache"


def _coordinate(raw: str, name: str, upper: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise BadRequest(f"tile {name} must be a non-negative integer")
    value = int(raw)
    if value >= upper:
        raise BadRequest(f"tile {name} must be below {upper} at this zoom")
    return value


# The statement is part of every ETag: a release that draws tiles differently changes them all.
_TILE_STATEMENT = hashlib.blake2b(tiles.TILE.encode(), digest_size=8).hexdigest()


def tile_etag(z: int, x: int, y: int, found: dict) -> str:
    key = f"{_TILE_STATEMENT}/{z}/{x}/{y}/{found['rooms_key']}/{found['floor_key']}/{found['graph_key']}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


@blueprint.get("/tiles/<z>/<x>/<y>.mvt")
def tile(z: str, x: str, y: str):
    zoom = _coordinate(z, "z", 31)
    column = _coordinate(x, "x", 2**zoom)
    row = _coordinate(y, "y", 2**zoom)
    if not MIN_ZOOM <= zoom <= MAX_ZOOM:
        raise NotFound(f"tiles exist at zoom {MIN_ZOOM} to {MAX_ZOOM}")
    wanted = request.if_none_match

    def read(cur):
        etag = tile_etag(zoom, column, row, versions.versions(cur))
        if wanted.contains_weak(etag):
            return etag, None
        return etag, tiles.tile(cur, zoom, column, row)

    etag, body = get_db().read(read)
    if body:
        response = Response(body, content_type=MVT)
    else:
        # 304: the client's copy is current; 204: nothing here (MapLibre draws an empty tile).
        response = Response(status=304 if body is None else 204)
        del response.headers["Content-Type"]
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


@blueprint.get("/tiles.json")
def tilejson():
    _, known = get_db().read(extents.current)
    bounds = extents.union(known[name][1] for name in ("rooms", "base-floor", "edges")) or (
        -180,
        -85.0511,
        180,
        85.0511,
    )
    center = [round((bounds[0] + bounds[2]) / 2, 7), round((bounds[1] + bounds[3]) / 2, 7), 18]
    document = {
        "tilejson": "3.0.0",
        "name": "indoor",
        "description": "Rooms, the floor plan and the route network; every feature carries its level.",
        "scheme": "xyz",
        # TileJSON 3.0 wants absolute URLs (MapLibre cannot resolve a relative one); without
        # PUBLIC_URL or TRUSTED_HOSTS only a path can be given (see indoor.links).
        "tiles": [links.link(TILE_PATH)],
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "bounds": list(bounds),
        "center": center,
        "vector_layers": [
            {"id": name, "fields": fields, "minzoom": MIN_ZOOM, "maxzoom": MAX_ZOOM}
            for name, fields in tiles.LAYERS.items()
        ],
    }
    body = json.dumps(document, separators=(",", ":"), allow_nan=False)
    response = Response(body, content_type="application/json")
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response
