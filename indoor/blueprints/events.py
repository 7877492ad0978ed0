"""GET /api/events/[?building=]: what changed, as it changes (Server-Sent Events, live/events.py)."""

from flask import Blueprint, Response, request, stream_with_context

from indoor.errors import ApiError
from indoor.extensions import get_settings
from indoor.http import params, sse
from indoor.live import events

blueprint = Blueprint("events", __name__)


@blueprint.get("/")
def stream():
    # A stream that never ends is for EventSource (which always asks for it), not for a plain GET.
    if not any(mimetype == sse.CONTENT_TYPE for mimetype, _ in request.accept_mimetypes):
        raise ApiError(406, "not_acceptable", "this is a Server-Sent Events stream: send 'Accept: text/event-stream'")
    building = params.text("building", strip=True)
    last_id = events.last_event_id(*sse.resume_token())
    # Everything that can fail is done before the stream starts (a JSON error, not a broken stream).
    opened = events.open_stream(building, last_id)
    settings = get_settings()
    body = events.frames(opened, settings.sse_heartbeat_s, settings.sse_retry_ms, settings.events_max_stream_s)
    response = Response(stream_with_context(body), mimetype=sse.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
