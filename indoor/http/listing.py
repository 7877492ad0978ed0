"""Feature listings (rooms, floor plan): a GeoJSON page, or the whole set as Server-Sent Events.

Shared by the rooms and floors blueprints (which must not import each other). The bodies are
the bytes PostGIS built; this module only frames them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Response, request, url_for

from indoor.errors import ApiError
from indoor.extensions import get_db, get_settings
from indoor.http import links, params, sse
from indoor.queries import floors, rooms

GEOJSON = "application/geo+json"
_OFFERED = [GEOJSON, "application/json", sse.CONTENT_TYPE]


def room_filters() -> rooms.RoomFilters:
    """The rooms listing's filters from the query (also OGC API - Features' rooms collection)."""
    return rooms.RoomFilters(
        level=params.level(),
        building=params.text("building"),
        bbox=params.bbox(),
        q=params.text("q", max_length=100, strip=True),
    )


def floor_filters() -> floors.FloorFilters:
    """The floor plan listing's filters from the query (also the OGC base-floor collection)."""
    return floors.FloorFilters(
        level=params.level(),
        building=params.text("building"),
        bbox=params.bbox(),
        layer=params.text("layer"),
    )


def wants_event_stream() -> bool:
    """True for `Accept: text/event-stream` (what EventSource sends); JSON for `*/*` or no Accept."""
    if not request.headers.get("Accept", "").strip():
        return False
    best = request.accept_mimetypes.best_match(_OFFERED)
    if best is None:
        raise ApiError(406, "not_acceptable", f"this resource is available as {', '.join(_OFFERED)}")
    return best == sse.CONTENT_TYPE


def list_features(resource: str, filters, page_fn: Callable) -> Response:
    """Answer a listing request: `page_fn(cur, filters, after, limit)` returns one page."""
    listing = params.scope(resource, filters.as_dict())
    stream = wants_event_stream()
    limit = params.limit()  # validated in both modes; ignored by the stream
    if stream:
        response = stream_features(listing, filters, page_fn)
    else:
        after = params.cursor(listing)
        page = get_db().read(lambda cur: page_fn(cur, filters, after, limit), one_statement=True)
        response = page_response(page, listing)
    response.headers["Vary"] = "Accept"
    return response


def page_response(page, listing: bytes) -> Response:
    parts = [
        b'{"type":"FeatureCollection","features":[',
        page.features,
        b'],"numberReturned":%d' % page.count,
    ]
    if page.more:
        link = {"rel": "next", "type": GEOJSON, "href": next_href(params.encode_cursor(page.last_id, listing))}
        parts.append(b',"links":' + json.dumps([link]).encode())
    parts.append(b"}")
    return Response(b"".join(parts), content_type=GEOJSON)


def next_href(cursor: str) -> str:
    """This request's URL with `cursor` set to continue after this page.

    Never built from an unchecked Host (a client, or a CDN caching the page, would send users
    wherever the header said): indoor/http/links.py decides the base, as for every link we write. The
    path is the route's canonical one, whatever slashes the request had.
    """
    args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("cursor", "lastEventId")]
    args.append(("cursor", cursor))
    return links.link(url_for(request.endpoint, **(request.view_args or {})), args)


def stream_features(listing: bytes, filters, page_fn: Callable) -> Response:
    settings = get_settings()
    database = get_db()  # the stream's fetches run outside the app context
    token, token_name = sse.resume_token()
    after = params.decode_cursor(token, listing, token_name) if token is not None else None
    batch = max(1, int(settings.sse_batch_size))

    def fetch(last_id, limit, cancelled=None):
        # Mid-stream a batch may wait longer for a connection than a request (heartbeats keep
        # the client informed meanwhile), and skips its query if its client has gone.
        return database.read(
            lambda cur: page_fn(cur, filters, last_id, limit),
            wait_s=settings.sse_pool_wait_s,
            unwanted=cancelled.is_set if cancelled is not None else None,
            one_statement=True,
        )

    # Before the first byte, an ordinary request: a failure is an ordinary JSON error.
    first = database.read(lambda cur: page_fn(cur, filters, after, batch), one_statement=True)
    if token is not None and first.count == 0:
        return sse.no_content()
    return sse.event_stream(
        first,
        fetch,
        lambda last_id: params.encode_cursor(last_id, listing),
        after,
        batch_size=batch,
        heartbeat_s=float(settings.sse_heartbeat_s),
        retry_ms=int(settings.sse_retry_ms),
        readahead_max_streams=int(settings.sse_readahead_max_streams),
        crowded_batch_size=max(1, min(batch, int(settings.sse_crowded_batch_size))),
    )
