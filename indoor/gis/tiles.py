"""Vector tiles: ETags from the data versions, a cache keyed by them, TileJSON.

A tile's ETag is its address, the tile statement and the versions the triggers bump (rooms,
floor plan, graph), read before the tile: a matching If-None-Match costs one small read and no
rendering, and any committed edit changes every ETag at once. Rendered tiles are kept in Redis
under their ETag (`TILE_CACHE_TTL_S`): the key changes with the data, so a cached tile is never
stale, and many clients looking at the same building cost one rendering per tile and version.
"""

from __future__ import annotations

import hashlib

from indoor.extensions import cache_get, cache_set, get_db, get_settings
from indoor.http import extents, links
from indoor.queries import tiles, versions

# A building is ~40 px wide at 16 and a door a few px at 20; below 16 a tile of a large campus
# holds too much to draw, above 20 MapLibre overzooms the z20 tiles.
MIN_ZOOM = 16
MAX_ZOOM = 20
TILE_PATH = "/api/tiles/{z}/{x}/{y}.mvt"
# The statement is part of every ETag: a release that draws tiles differently changes them all.
_TILE_STATEMENT = hashlib.blake2b(tiles.TILE.encode(), digest_size=8).hexdigest()


def tile_etag(z: int, x: int, y: int, found: dict, level=None, layers: tuple = tuple(tiles.LAYERS)) -> str:
    key = f"{_TILE_STATEMENT}/{z}/{x}/{y}/{found['rooms_key']}/{found['floor_key']}/{found['graph_key']}"
    if level is not None or tuple(layers) != tuple(tiles.LAYERS):
        # A filtered tile is another tile (its own ETag and cache entry); normalised so that
        # level=1 and level=1.0 share one.
        key += f"/level={'' if level is None else level.normalize()}/layers={','.join(layers)}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def tile(
    z: int, x: int, y: int, is_current, level=None, layers: tuple = tuple(tiles.LAYERS)
) -> tuple[str, bytes | None]:
    """(ETag, the tile's bytes, b'' when empty), or (ETag, None) when `is_current(etag)`;
    `level` and `layers` filter it (see indoor.queries.tiles)."""
    database = get_db()
    etag = tile_etag(z, x, y, database.read(versions.versions), level, layers)
    if is_current(etag):
        return etag, None
    ttl = get_settings().tile_cache_ttl_s
    key = f"tile:{etag}"
    cached = cache_get(key) if ttl > 0 and get_settings().redis_url else None
    if cached is not None:
        return etag, cached
    # Rendered in a transaction after the versions': it may hold a newer edit than the ETag
    # says (then the next request gets both anew), never an older one.
    body = database.read(lambda cur: tiles.tile(cur, z, x, y, level, layers))
    if ttl > 0 and get_settings().redis_url:
        cache_set(key, body, timeout=ttl)
    return etag, body


def tilejson() -> dict:
    _, known = get_db().read(extents.current)
    boxes = (known[name][1] for name in ("rooms", "base-floor", "edges"))
    bounds = extents.union(boxes) or (-180, -85.0511, 180, 85.0511)
    center = [round((bounds[0] + bounds[2]) / 2, 7), round((bounds[1] + bounds[3]) / 2, 7), 18]
    return {
        "tilejson": "3.0.0",
        "name": "indoor",
        "description": "Rooms, the floor plan and the route network; every feature carries its level.",
        "scheme": "xyz",
        # TileJSON 3.0 wants absolute URLs; without PUBLIC_URL or TRUSTED_HOSTS only a path can
        # be given (MapLibre resolves it against the page's origin; see indoor.http.links).
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
