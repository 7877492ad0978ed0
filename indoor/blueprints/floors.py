"""The drawn floor plan: `GET /api/base-floor/`."""

from flask import Blueprint

from indoor.http import listing
from indoor.queries import floors

blueprint = Blueprint("floors", __name__)


@blueprint.get("/base-floor/")
def list_base_floor():
    return listing.list_features("base-floor", listing.floor_filters(), floors.base_floor_page)
