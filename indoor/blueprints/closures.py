"""/api/closures/: POST (token with closures:write), GET list and one (public), DELETE (token)."""

import json

from flask import Blueprint, g, jsonify, request, url_for

from indoor.errors import ApiError, BadRequest
from indoor.http import params
from indoor.live import auth, closures

blueprint = Blueprint("closures", __name__)

MAX_BODY = 64 * 1024
WRITE_SCOPE = "closures:write"


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _body():
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)")
    too_large = ApiError(413, "payload_too_large", f"the body must be at most {MAX_BODY} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise too_large
    try:
        return json.loads(raw, parse_constant=_refuse_constant)  # NaN and Infinity are not JSON
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None


@blueprint.post("/")
@auth.require(WRITE_SCOPE)
def create():
    values = closures.parse(_body())
    closure = closures.create(values, g.token_name)
    response = jsonify({"closure": closure})
    response.status_code = 201
    response.headers["Location"] = url_for("closures.one", closure_id=closure["id"])
    return response


@blueprint.get("/")
def listing():
    active = params.arg("active")
    if active not in (None, "true", "false"):
        raise BadRequest("parameter 'active' must be true or false")
    building = params.text("building", strip=True)
    found = closures.listing(None if active is None else active == "true", building)
    return jsonify({"closures": found})


@blueprint.get("/<closure_id>")
def one(closure_id):
    return jsonify({"closure": closures.get(params.feature_id(closure_id, "id"))})


@blueprint.delete("/<closure_id>")
@auth.require(WRITE_SCOPE)
def remove(closure_id):
    closures.remove(params.feature_id(closure_id, "id"), g.token_name)
    return "", 204
