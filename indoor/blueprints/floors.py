"""The drawn floor plan: `GET /api/base-floor/`."""

from flask import Blueprint

from indoor import listing, params
from indoor.queries import floors

blueprint = Blueprint("floors", __name__)


@blueprint.get("/base-floor/")
def list_base_floor():
    filters = floors.FloorFilters(
        level=params.level(),
        building=params.text("building"),
        bbox=params.bbox(),
        layer=params.text("layer"),
    )
    return listing.list_features("base-floor", filters, floors.base_floor_page)
