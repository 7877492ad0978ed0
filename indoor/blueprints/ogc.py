"""OGC API - Features under `/ogc/`: route -> indoor.gis.ogc (collections, documents, items)."""

from flask import Blueprint

from indoor.gis import ogc

blueprint = Blueprint("ogc", __name__)


@blueprint.get("/")
def landing():
    return ogc.json_response(ogc.landing())


@blueprint.get("/conformance")
def conformance():
    return ogc.json_response(ogc.conformance())


@blueprint.get("/api")
def api_definition():
    return ogc.json_response(ogc.api_definition(), ogc.OPENAPI)


@blueprint.get("/collections")
def collections():
    return ogc.json_response(ogc.collections_document())


@blueprint.get("/collections/<collection_id>")
def collection(collection_id: str):
    return ogc.json_response(ogc.collection_document(ogc.collection(collection_id)))


@blueprint.get("/collections/<collection_id>/queryables")
def queryables(collection_id: str):
    return ogc.json_response(ogc.queryables(ogc.collection(collection_id)), ogc.SCHEMA_JSON)


@blueprint.get("/collections/<collection_id>/schema")
def schema(collection_id: str):
    return ogc.json_response(ogc.feature_schema(ogc.collection(collection_id)), ogc.SCHEMA_JSON)


@blueprint.get("/collections/<collection_id>/items")
def items(collection_id: str):
    return ogc.items(ogc.collection(collection_id))


@blueprint.get("/collections/<collection_id>/items/<feature_id>")
def item(collection_id: str, feature_id: str):
    return ogc.item(ogc.collection(collection_id), feature_id)
