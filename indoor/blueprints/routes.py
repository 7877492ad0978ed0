"""GET /api/route/?from=<place>&to=<place>[&via=<place>...][&profile=walking|accessible]
[&avoid=stairs,escalators,elevators,ramps][&lang=xx]."""

from flask import Blueprint, Response, request

from indoor import i18n, routing
from indoor.errors import BadRequest
from indoor.http import instructions, params
from indoor.queries.routing import AVOIDABLE, PROFILES

blueprint = Blueprint("routes", __name__)

MAX_VIAS = 5


@blueprint.get("/")
def route():
    origin = params.place("from")
    vias = params.places("via", MAX_VIAS)
    destination = params.place("to")
    profile = params.choice("profile", PROFILES, default="walking")
    avoid = _avoid()
    if any(isinstance(v, params.CategoryPlace) for v in vias):
        raise BadRequest("parameter 'via' takes a room id or lon,lat[,level]; category:NAME is for 'from' or 'to'")
    if isinstance(origin, params.CategoryPlace) and isinstance(destination, params.CategoryPlace):
        raise BadRequest("parameters 'from' and 'to' are both category:NAME; at most one of them can be")
    language = i18n.negotiate(request.args.get("lang"), request.accept_languages)
    # One cached route serves every language: the words are rendered here, per request.
    cached, cache_state = routing.route_between([origin, *vias, destination], profile, avoid)
    response = Response(instructions.frame_route(cached, language), mimetype="application/geo+json")
    response.headers["X-Cache"] = cache_state
    response.headers["Content-Language"] = language
    response.vary.add("Accept-Language")
    return response


def _avoid() -> tuple[str, ...]:
    """`avoid=`: any subset of AVOIDABLE, comma-separated -> the edge kinds (sorted)."""
    raw = params.arg("avoid", max_length=100)
    if not raw:
        return ()
    names = [part.strip() for part in raw.split(",")]
    unknown = [n for n in names if n not in AVOIDABLE]
    if unknown:
        raise BadRequest(f"parameter 'avoid': unknown {unknown[0]!r}; known: {', '.join(AVOIDABLE)}")
    return tuple(sorted({AVOIDABLE[n] for n in names}))
