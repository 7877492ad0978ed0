"""GET /api/route/?from=<place>&to=<place>[&via=<place>...][&profile=walking|accessible][&lang=xx]."""

from flask import Blueprint, Response, request

from indoor import i18n, routing
from indoor.errors import BadRequest
from indoor.http import instructions, params
from indoor.queries.routing import PROFILES

blueprint = Blueprint("routes", __name__)

MAX_VIAS = 5


@blueprint.get("/")
def route():
    origin = params.place("from")
    vias = params.places("via", MAX_VIAS)
    destination = params.place("to")
    profile = params.choice("profile", PROFILES, default="walking")
    if any(isinstance(v, params.CategoryPlace) for v in vias):
        raise BadRequest("parameter 'via' takes a room id or lon,lat[,level]; category:NAME is for 'from' or 'to'")
    if isinstance(origin, params.CategoryPlace) and isinstance(destination, params.CategoryPlace):
        raise BadRequest("parameters 'from' and 'to' are both category:NAME; at most one of them can be")
    language = i18n.negotiate(request.args.get("lang"), request.accept_languages)
    # One cached route serves every language: the words are rendered here, per request.
    cached, cache_state = routing.route_between([origin, *vias, destination], profile)
    response = Response(instructions.frame_route(cached, language), mimetype="application/geo+json")
    response.headers["X-Cache"] = cache_state
    response.headers["Content-Language"] = language
    response.vary.add("Accept-Language")
    return response
