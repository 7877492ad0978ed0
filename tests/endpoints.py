"""The endpoints fault and load tests exercise. Extend these lists as endpoints arrive: every
fault test then covers them too.

- DATABASE_READS: GET paths that need the database (each answers 200 on the demo campus).
- NO_DATABASE: GET paths that must keep answering whatever happens to the database and cache.
- TABLES_READ: every table some DATABASE_READS endpoint reads (a statement-timeout test locks them).
- PENDING_PATHS: paths documented in indoor/openapi.json but not served in this tree yet. The fuzz
  test skips them; tests/test_openapi.py fails once one is served, so the list empties as they land.
"""

PENDING_PATHS: list[str] = []

DATABASE_READS = [
    "/api/health/ready",
    "/api/levels/",
    "/api/categories/",
    "/api/rooms/?level=1&limit=50",
    "/api/rooms/1",
    "/api/base-floor/?layer=room&limit=50",
    "/api/route/?from=1&to=150",
    "/api/route/?from=13.3691,52.5251,0&to=40&profile=accessible",
    "/ogc/collections/rooms/items?level=1&limit=50",
    "/ogc/collections/edges/items/1",
    "/api/tiles.json",
    "/api/tiles/18/140807/85965.mvt",  # holds rooms of the demo campus
]

NO_DATABASE = [
    "/api/health/",
    "/api/openapi.json",
    "/ogc/",
    "/ogc/conformance",
    "/ogc/api",
]

TABLES_READ = [
    "indoor_versions",
    "room_points",
    "base_floor",
    "nav_edges_final",
    "nav_edges_work_vertices_pgr",
]


def is_unavailable(path: str, status: int, body) -> bool:
    """A 503 the way the API promises it: the error shape, or readiness's own body."""
    if status != 503 or not isinstance(body, dict):
        return False
    if path.startswith("/api/health/ready"):
        return body.get("ok") is False and isinstance(body.get("database"), str)
    return body.get("error", {}).get("code") == "unavailable"
