"""/api/openapi.json: served, a valid OpenAPI 3.1 document, and true to the app and to API.md."""

import json
import re

import jsonschema_rs
import pytest
import schemathesis
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.endpoints import PENDING_PATHS


@pytest.fixture
def document(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def _operation(document, path):
    return document["paths"][path]["get"]


def _parameters(document, path) -> dict:
    resolved = {}
    for parameter in _operation(document, path)["parameters"]:
        if "$ref" in parameter:
            parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        resolved[parameter["name"]] = parameter
    return resolved


def test_the_document_is_valid_openapi_31(document):
    assert document["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(document)
    labels = [operation.ok().label for operation in schema.get_all_operations()]
    methods = {"get", "post", "put", "patch", "delete"}
    assert len(labels) == sum(len(methods & set(item)) for item in document["paths"].values())


def test_it_is_conditional_and_cacheable(client):
    first = client.get("/api/openapi.json")
    again = client.get("/api/openapi.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.get_data()


def _served(app, path: str) -> bool:
    adapter = app.url_map.bind("localhost")
    try:
        adapter.match(re.sub(r"\{[^}]+\}", "1", path), method="GET")
    except MethodNotAllowed:
        return True
    except NotFound:
        return False
    return True


def test_every_served_api_path_is_documented(app, document):
    documented = {path.rstrip("/") for path in document["paths"]}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or "GET" not in rule.methods:
            continue
        as_openapi = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule).rstrip("/")
        assert as_openapi in documented, f"{rule.rule} is served but not in indoor/openapi.json"


def test_every_documented_path_is_served_unless_pending(app, document):
    for path in document["paths"]:
        if path in PENDING_PATHS:
            assert not _served(app, path), f"{path} is served now: remove it from PENDING_PATHS (tests/endpoints.py)"
        else:
            assert _served(app, path), f"{path} is documented but not served"


def test_the_document_carries_api_md_parameters(document):
    rooms = _parameters(document, "/api/rooms/")
    assert {"level", "building", "bbox", "q", "limit", "cursor", "lastEventId", "Last-Event-ID"} <= set(rooms)
    assert rooms["level"]["schema"]["type"] == "number"
    assert rooms["limit"]["schema"] == {"type": "integer", "minimum": 1, "default": 100}
    floor = _parameters(document, "/api/base-floor/")
    assert {"level", "building", "bbox", "layer", "limit", "cursor", "lastEventId"} <= set(floor)
    assert "q" not in floor
    route = _parameters(document, "/api/route/")
    assert route["from"]["required"] and route["to"]["required"]
    assert route["profile"]["schema"]["enum"] == ["walking", "accessible"]
    assert not route["via"].get("required") and route["via"]["schema"]["maxItems"] == 5
    assert _parameters(document, "/api/rooms/{room_id}")["room_id"]["in"] == "path"
    for path in ("/api/rooms/", "/api/base-floor/"):
        answers = _operation(document, path)["responses"]
        assert set(answers["200"]["content"]) == {"application/geo+json", "text/event-stream"}
        assert {"204", "400", "429", "503"} <= set(answers)
    assert {"400", "404", "422", "429", "503"} <= set(_operation(document, "/api/route/")["responses"])


def test_the_documented_error_shape_is_what_the_app_sends(document, client):
    error_schema = dict(document["components"]["schemas"]["Error"])
    validator = jsonschema_rs.validator_for(error_schema)
    for path in ["/api/nope", "/api/health/ready/extra"]:
        body = client.get(path).get_json()
        validator.validate(body)
    with pytest.raises(jsonschema_rs.ValidationError):
        validator.validate({"error": {"code": "Not Found", "message": ""}})
    json.dumps(document)  # plain JSON all the way down
