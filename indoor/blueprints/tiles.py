"""Vector tiles: `GET /api/tiles.json` (TileJSON 3.0) and `GET /api/tiles/<z>/<x>/<y>.mvt`."""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from indoor.errors import BadRequest, NotFound
from indoor.gis import tiles
from indoor.http import params
from indoor.queries.tiles import LAYERS

blueprint = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
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


@blueprint.get("/tiles/<z>/<x>/<y>.mvt")
def tile(z: str, x: str, y: str):
    zoom = _coordinate(z, "z", 31)
    column = _coordinate(x, "x", 2**zoom)
    row = _coordinate(y, "y", 2**zoom)
    if not tiles.MIN_ZOOM <= zoom <= tiles.MAX_ZOOM:
        raise NotFound(f"tiles exist at zoom {tiles.MIN_ZOOM} to {tiles.MAX_ZOOM}")
    etag, body = tiles.tile(zoom, column, row, request.if_none_match.contains_weak, params.level(), _layers())
    if body:
        response = Response(body, content_type=MVT)
    else:
        # 304: the client's copy is current; 204: nothing here (MapLibre draws an empty tile).
        response = Response(status=304 if body is None else 204)
        del response.headers["Content-Type"]
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def _layers() -> tuple:
    """`?layers=rooms,floor`: those layers only, in the tile's usual order; all when absent."""
    raw = params.arg("layers", max_length=64)
    if raw is None:
        return tuple(LAYERS)
    wanted = raw.split(",")
    if not raw or any(name not in LAYERS for name in wanted):
        raise BadRequest(f"parameter 'layers' must be a comma-separated list of: {', '.join(LAYERS)}")
    return tuple(name for name in LAYERS if name in wanted)


@blueprint.get("/tiles.json")
def tilejson():
    body = json.dumps(tiles.tilejson(), separators=(",", ":"), allow_nan=False)
    response = Response(body, content_type="application/json")
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response
