"""GET /api/route/?from=<place>&to=<place>[&profile=walking|accessible]."""

from flask import Blueprint, Response

from indoor import params, routing
from indoor.queries.routing import PROFILES

blueprint = Blueprint("routes", __name__)


@blueprint.get("/")
def route():
    origin = params.place("from")
    destination = params.place("to")
    profile = params.choice("profile", PROFILES, default="walking")
    body, cache_state = routing.route_between(origin, destination, profile)
    response = Response(body, mimetype="application/geo+json")
    response.headers["X-Cache"] = cache_state
    return response
