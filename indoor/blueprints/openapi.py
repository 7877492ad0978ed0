"""The API described as OpenAPI 3.1: a hand-written document kept next to the code it describes."""

from __future__ import annotations

import hashlib
from importlib import resources

from flask import Blueprint, Response, request

blueprint = Blueprint("openapi", __name__)


def document_bytes() -> bytes:
    return resources.files("indoor").joinpath("openapi.json").read_bytes()


@blueprint.get("/openapi.json")
def openapi_document():
    body = document_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]
    response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response.make_conditional(request)
