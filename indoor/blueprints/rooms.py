"""Levels and rooms: `GET /api/levels/`, `GET /api/rooms/`, `GET /api/rooms/<id>`, `GET /api/categories/`."""

from flask import Blueprint, Response, jsonify

from indoor.errors import NotFound
from indoor.extensions import get_db
from indoor.http import listing, params
from indoor.http.levels import levels_body
from indoor.queries import rooms

blueprint = Blueprint("rooms", __name__)


@blueprint.get("/levels/")
def list_levels():
    building = params.text("building")
    body = get_db().read(lambda cur: levels_body(cur, building))
    return Response(b'{"levels":' + body + b"}", content_type="application/json")


@blueprint.get("/rooms/")
def list_rooms():
    return listing.list_features("rooms", listing.room_filters(), rooms.rooms_page)


@blueprint.get("/rooms/<room_id>")
def get_room(room_id: str):
    ident = params.feature_id(room_id, "id")
    body = get_db().read(lambda cur: rooms.room_feature(cur, ident))
    if body is None:
        raise NotFound(f"room {ident} not found")
    return Response(body, content_type=listing.GEOJSON)


@blueprint.get("/categories/")
def list_categories():
    building = params.text("building")
    found = get_db().read(lambda cur: rooms.categories(cur, building))
    return jsonify(categories=found)
