"""OGC API - Features (Part 1 Core, GeoJSON; Part 3 queryables as query parameters) over the same
queries as the rooms and floor-plan listings, plus the route network's edges and vertices.

The blueprint (`blueprints/ogc.py`) only routes; this module knows the collections, frames the
documents, and builds the API definition served at `/ogc/api`. Feature bodies are the bytes
PostGIS built for the listings; only the wrappers are made here. Links follow `indoor.http.links`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import Response, request

from indoor.errors import BadRequest, NotFound
from indoor.extensions import get_db
from indoor.http import extents, links, listing, params
from indoor.queries import floors, ogc, rooms

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
PREFIX = "/ogc"

# Declared honestly: no HTML encoding, no CRS other than CRS84 (Part 2), no CQL2 filter.
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 10000
# Parameters every items request accepts besides the collection's own. `f` is what many
# clients add to ask for JSON; it may only ask for what we serve.
COMMON_PARAMETERS = ("limit", "bbox", "datetime", "cursor", "f")
FORMATS = ("json", "geojson")

LEVEL = {"type": "number", "title": "level", "description": "OSM-style level: 0 ground, 1, -1, 0.5 mezzanine"}
BUILDING = {"type": ["string", "null"], "title": "building"}
NAME = {"type": ["string", "null"], "title": "name"}
# Numbers have one type (GDAL 3.6 reads a list of types as text); null only for broken rows.
TO_LEVEL = {"type": "number", "title": "to_level", "description": "the level of the edge's target vertex"}
COST = {"type": "number", "description": "metres; negative: closed this way; null when not a finite number"}
VERTEX = {"type": "integer"}


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    geometry: str  # the GeoJSON geometry type ("Geometry": any)
    properties: dict  # every feature property: name -> JSON Schema
    queryables: tuple  # names of properties that are also equality query parameters
    filters: Callable[[], object]  # the request's filters
    page: Callable  # (cur, filters, after, limit) -> queries.features.Page
    feature: Callable  # (cur, id) -> Feature bytes or None
    extra: dict = field(default_factory=dict)  # other query parameters: name -> (schema, description)

    @property
    def parameters(self) -> set[str]:
        return set(COMMON_PARAMETERS) | set(self.queryables) | set(self.extra)

    def schema_of(self, names) -> dict:
        return {name: self.properties[name] for name in names}


def _edge_filters() -> ogc.EdgeFilters:
    return ogc.EdgeFilters(level=params.level(), kind=params.text("kind"), bbox=params.bbox())


def _vertex_filters() -> ogc.VertexFilters:
    return ogc.VertexFilters(level=params.level(), bbox=params.bbox())


COLLECTIONS = {
    c.id: c
    for c in (
        Collection(
            "rooms",
            "Rooms",
            "One labelled point per room (table room_points); id = ogc_fid, the room id of /api/rooms/.",
            "Point",
            {"name": {"type": "string", "title": "name"}, "level": LEVEL, "building": BUILDING},
            ("level", "building"),
            listing.room_filters,
            rooms.rooms_page,
            rooms.room_feature,
            extra={"q": ({"type": "string"}, "case-insensitive substring of the room's name")},
        ),
        Collection(
            "base-floor",
            "Floor plan",
            "The drawn floor plan (table base_floor): walls, room outlines, corridors, doors, areas.",
            "Geometry",
            {
                "layer": {"type": ["string", "null"], "title": "layer"},
                "name": NAME,
                "level": LEVEL,
                "building": BUILDING,
            },
            ("level", "building", "layer"),
            listing.floor_filters,
            floors.base_floor_page,
            floors.base_floor_feature,
        ),
        Collection(
            "edges",
            "Route network edges",
            "The routing network's edges (table nav_edges_final), read-only; a negative cost is closed that way.",
            "LineString",
            {
                "kind": {"type": "string", "title": "kind", "description": "corridor, door, stairs, escalator, ..."},
                "level": {**LEVEL, "description": "the level of its source vertex"},
                "to_level": TO_LEVEL,
                "source": VERTEX,
                "target": VERTEX,
                "cost": COST,
                "reverse_cost": COST,
            },
            ("level", "kind"),
            _edge_filters,
            ogc.edges_page,
            ogc.edge_feature,
        ),
        Collection(
            "vertices",
            "Route network vertices",
            "The routing network's vertices (table nav_edges_work_vertices_pgr), read-only.",
            "Point",
            {"level": LEVEL},
            ("level",),
            _vertex_filters,
            ogc.vertices_page,
            ogc.vertex_feature,
        ),
    )
}


def collection(collection_id: str) -> Collection:
    found = COLLECTIONS.get(collection_id)
    if found is None:
        raise NotFound(f"collection '{collection_id}' not found (collections: {', '.join(COLLECTIONS)})")
    return found


# -- documents --------------------------------------------------------------------------------


def _link(rel: str, type_: str, path: str, title: str | None = None, args=None) -> dict:
    found = {"rel": rel, "type": type_, "href": links.link(PREFIX + path, args)}
    if title:
        found["title"] = title
    return found


def json_response(document: dict, content_type: str = JSON) -> Response:
    return Response(json.dumps(document, separators=(",", ":"), allow_nan=False), content_type=content_type)


def landing() -> dict:
    return {
        "title": "Indoor maps",
        "description": "Floor plans, rooms and the route network as OGC API - Features (GeoJSON, CRS84).",
        "links": [
            _link("self", JSON, "/", "this document"),
            _link("service-desc", OPENAPI, "/api", "the API definition (OpenAPI 3.0)"),
            _link("conformance", JSON, "/conformance", "conformance classes implemented"),
            _link("data", JSON, "/collections", "the feature collections"),
        ],
    }


def conformance() -> dict:
    return {"conformsTo": CONFORMANCE}


def _collection_document(c: Collection, extent) -> dict:
    document = {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link("self", JSON, f"/collections/{c.id}", c.title),
            _link("items", GEOJSON, f"/collections/{c.id}/items", f"{c.title} as GeoJSON"),
            _link(QUERYABLES_REL, SCHEMA_JSON, f"/collections/{c.id}/queryables", "queryables"),
            # Relation types compare case-insensitively (RFC 8288); GDAL 3.6 matches these spellings.
            _link("queryables", SCHEMA_JSON, f"/collections/{c.id}/queryables", "queryables"),
            _link("describedBy", SCHEMA_JSON, f"/collections/{c.id}/schema", "the features' schema"),
        ],
    }
    if extent is not None:
        document["extent"] = {"spatial": {"bbox": [list(extent)], "crs": CRS84}}
    return document


def _bboxes() -> dict:
    """{collection id: its bbox or None}, as extents.current keeps them."""
    known = get_db().read(lambda cur: extents.current(cur)[1])
    return {name: box for name, (_, box) in known.items()}


def collections_document() -> dict:
    bboxes = _bboxes()
    return {
        "links": [_link("self", JSON, "/collections", "the feature collections")],
        "collections": [_collection_document(c, bboxes.get(c.id)) for c in COLLECTIONS.values()],
    }


def collection_document(c: Collection) -> dict:
    return _collection_document(c, _bboxes().get(c.id))


def queryables(c: Collection) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": links.link(f"{PREFIX}/collections/{c.id}/queryables"),
        "type": "object",
        "title": c.title,
        "properties": c.schema_of(c.queryables),
        "additionalProperties": False,
    }


def feature_schema(c: Collection) -> dict:
    """A feature of the collection as JSON Schema (what GDAL and QGIS read the field types from)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": links.link(f"{PREFIX}/collections/{c.id}/schema"),
        "title": c.title,
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": "integer"},
            "geometry": {"type": ["object", "null"], "description": f"GeoJSON {c.geometry}, CRS84"},
            "properties": {"type": "object", "properties": c.properties},
        },
    }


# -- items ------------------------------------------------------------------------------------

_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2}))?"
_DATETIME = re.compile(rf"^(?:{_DATE_TIME}|(?:{_DATE_TIME}|\.\.|)/(?:{_DATE_TIME}|\.\.|))$")


_PARTS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))?)?"
)


def _real_instants(value: str) -> bool:
    """Every date-time in `value` names a real instant (2020-13-45 or 25:00:00 does not)."""
    from datetime import date

    for match in _PARTS.finditer(value):
        year, month, day, hour, minute, second, offset_h, offset_m = match.groups()
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            return False
        if hour is not None and (int(hour) > 23 or int(minute) > 59 or int(second) > 60):
            return False  # 60: a leap second (RFC 3339)
        if offset_h is not None and (int(offset_h) > 23 or int(offset_m) > 59):
            return False
    return True


def _check_parameters(c: Collection) -> None:
    """Unknown parameters are refused (OGC /rec/core/query-param-unknown): a filter this collection
    does not have must not silently return everything."""
    unknown = sorted(set(request.args) - c.parameters)
    if unknown:
        raise BadRequest(
            f"parameter '{unknown[0]}' is not known for collection '{c.id}' (known: {', '.join(sorted(c.parameters))})"
        )
    fmt = params.arg("f", max_length=16)
    if fmt is not None and fmt not in FORMATS:
        raise BadRequest(f"parameter 'f' must be one of: {', '.join(FORMATS)}")
    raw = params.arg("datetime", max_length=100)
    if raw is not None and (not _DATETIME.match(raw) or raw == "/" or not _real_instants(raw)):
        raise BadRequest("parameter 'datetime' must be an RFC 3339 date-time or an interval (a/b, ../b, a/..)")
    # The features have no time: a valid datetime selects all of them (Part 1, 7.15.4).


def items(c: Collection) -> Response:
    _check_parameters(c)
    filters = c.filters()
    limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)
    scope = params.scope(f"ogc:{c.id}", filters.as_dict())
    after = params.cursor(scope)
    unfiltered = all(value is None for value in filters.as_dict().values())

    def read(cur):
        # Before the page: its cursor returns text as bytes. Kept until the table changes.
        counted = extents.current(cur)[1][c.id][0] if after is None and unfiltered else None
        page = c.page(cur, filters, after, limit)
        if after is None and not page.more:
            counted = page.count  # the whole set is on this page
        return page, counted

    page, matched = get_db().read(read)
    path = f"/collections/{c.id}/items"
    args = [(k, v) for k, v in request.args.items(multi=True)]
    page_links = [_link("self", GEOJSON, path, "this page", args)]
    if page.more:
        following = [(k, v) for k, v in args if k != "cursor"] + [("cursor", params.encode_cursor(page.last_id, scope))]
        page_links.append(_link("next", GEOJSON, path, "next page", following))
    page_links.append(_link("collection", JSON, f"/collections/{c.id}", c.title))
    head = b'{"type":"FeatureCollection","features":['
    tail = {
        "numberReturned": page.count,
        **({"numberMatched": matched} if matched is not None else {}),
        "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "links": page_links,
    }
    body = head + page.features + b"]," + json.dumps(tail, separators=(",", ":"))[1:].encode()
    return Response(body, content_type=GEOJSON)


def item(c: Collection, raw_id: str) -> Response:
    ident = params.feature_id(raw_id, "featureId")
    body = get_db().read(lambda cur: c.feature(cur, ident))
    if body is None:
        raise NotFound(f"feature {ident} not found in collection '{c.id}'")
    item_links = [
        _link("self", GEOJSON, f"/collections/{c.id}/items/{ident}", "this feature"),
        _link("collection", JSON, f"/collections/{c.id}", c.title),
    ]
    # The Feature object PostGIS built ends with its closing brace: the links go before it.
    framed = body[:-1] + b',"links":' + json.dumps(item_links, separators=(",", ":")).encode() + b"}"
    return Response(framed, content_type=GEOJSON)


# -- the API definition -----------------------------------------------------------------------


def _parameter(name: str, schema: dict, description: str, location: str = "query") -> dict:
    return {
        "name": name,
        "in": location,
        "required": location == "path",
        "description": description,
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def _json_answer(description: str, content_type: str = JSON) -> dict:
    return {"description": description, "content": {content_type: {"schema": {"type": "object"}}}}


def api_definition() -> dict:
    errors = {
        "400": _json_answer("a malformed or unknown parameter (the message names it)"),
        "404": _json_answer("no such collection or feature"),
        "429": _json_answer("rate limited"),
        "503": _json_answer("the database is unavailable"),
    }
    common = [
        _parameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            f"features per page (a larger value is served as {MAX_LIMIT})",
        ),
        _parameter(
            "bbox",
            {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
            "minlon,minlat,maxlon,maxlat (CRS84): features whose geometry intersects the box",
        ),
        _parameter("datetime", {"type": "string"}, "accepted and ignored: the features have no time"),
        _parameter("cursor", {"type": "string"}, "where a page continues (from a next link)"),
        _parameter("f", {"type": "string", "enum": list(FORMATS)}, "the encoding: GeoJSON"),
    ]
    paths = {
        "/": {"get": {"summary": "landing page", "responses": {"200": _json_answer("the landing page")}}},
        "/conformance": {"get": {"summary": "conformance classes", "responses": {"200": _json_answer("classes")}}},
        "/collections": {"get": {"summary": "the collections", "responses": {"200": _json_answer("collections")}}},
        "/api": {"get": {"summary": "this document", "responses": {"200": _json_answer("OpenAPI 3.0", OPENAPI)}}},
    }
    for c in COLLECTIONS.values():
        own = [_parameter(name, c.properties[name], f"{name} equals") for name in c.queryables]
        own += [_parameter(name, schema, text) for name, (schema, text) in c.extra.items()]
        base = f"/collections/{c.id}"
        paths[base] = {"get": {"summary": c.title, "responses": {"200": _json_answer("the collection"), **errors}}}
        for document in ("queryables", "schema"):
            paths[f"{base}/{document}"] = {
                "get": {
                    "summary": f"{c.title}: {document}",
                    "responses": {"200": _json_answer("JSON Schema", SCHEMA_JSON)},
                }
            }
        paths[base + "/items"] = {
            "get": {
                "summary": f"{c.title}: features, in id order, paged by next links",
                "parameters": common + own,
                "responses": {"200": _json_answer("a FeatureCollection", GEOJSON), **errors},
            }
        }
        paths[base + "/items/{featureId}"] = {
            "get": {
                "summary": f"{c.title}: one feature",
                "parameters": [_parameter("featureId", {"type": "integer"}, "the feature's id", "path")],
                "responses": {"200": _json_answer("a Feature", GEOJSON), **errors},
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Indoor maps: OGC API - Features", "version": "1.0.0"},
        "servers": [{"url": links.link(PREFIX)}],
        "paths": paths,
    }
