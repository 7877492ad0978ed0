"""The floor plan as GeoJSON pages: RFC 7946 geometry, layer/building/level/bbox filters, paging."""

from __future__ import annotations

import json

import pytest

from tests.feature_data import query


def all_features(client, url):
    features = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.data
        assert response.headers["Content-Type"] == "application/geo+json"
        body = json.loads(response.data)
        assert body["type"] == "FeatureCollection" and "crs" not in body
        features += body["features"]
        url = next((link["href"] for link in body.get("links", []) if link["rel"] == "next"), None)
    return features


def signed_area(ring) -> float:
    """Shoelace: > 0 for a counter-clockwise ring (lon = x, lat = y)."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False)) / 2


def test_polygons_follow_rfc_7946_winding(fclient):
    features = all_features(fclient, "/api/base-floor/?level=7&layer=room")
    (square,) = features
    assert square["properties"] == {"layer": "room", "name": "CW square with hole", "level": 7, "building": "North"}
    exterior, hole = square["geometry"]["coordinates"]
    assert signed_area(exterior) > 0, "exterior ring must be counter-clockwise"
    assert signed_area(hole) < 0, "holes must be clockwise"
    assert exterior[0] == exterior[-1] and [13.38, 52.53] in exterior  # lon, lat order
    (multi,) = all_features(fclient, "/api/base-floor/?level=7&layer=area")
    assert multi["geometry"]["type"] == "MultiPolygon"
    assert all(signed_area(polygon[0]) > 0 for polygon in multi["geometry"]["coordinates"])
    # Lines keep the direction they were drawn in (south to north here): only polygons turn.
    walls = all_features(fclient, "/api/base-floor/?level=7&layer=wall&limit=5")
    assert walls and all(w["geometry"]["coordinates"][0][1] < w["geometry"]["coordinates"][-1][1] for w in walls)


def test_layer_building_and_level_filters_are_plain_equality(fclient, features_url):
    for url, statement in [
        ("/api/base-floor/?layer=door&limit=1000", "SELECT ogc_fid FROM base_floor WHERE layer = 'door' ORDER BY 1"),
        (
            "/api/base-floor/?layer=wall&building=South&level=7&limit=37",
            "SELECT ogc_fid FROM base_floor WHERE layer = 'wall' AND building = 'South' AND level = 7 ORDER BY 1",
        ),
        ("/api/base-floor/?layer=Wall", "SELECT ogc_fid FROM base_floor WHERE layer = 'Wall' ORDER BY 1"),
    ]:
        expected = [row[0] for row in query(features_url, statement)]
        assert [f["id"] for f in all_features(fclient, url)] == expected, url


def test_paging_the_whole_floor_plan_returns_every_feature_once(fclient, features_url):
    expected = [row[0] for row in query(features_url, "SELECT ogc_fid FROM base_floor ORDER BY 1")]
    features = all_features(fclient, "/api/base-floor/?limit=250")
    assert [f["id"] for f in features] == expected
    walls = [f for f in features if f["properties"]["layer"] == "wall"]
    assert walls and all(f["properties"]["name"] is None and f["geometry"]["type"] == "LineString" for f in walls)


def test_bbox_selects_features_whose_geometry_intersects_the_box(fclient, features_url):
    # The box lies inside the square's hole: the square's bounding box overlaps it but its
    # geometry does not touch it, so it is not returned; the lines crossing the hole are.
    box = (13.3803, 52.5303, 13.3804, 52.5304)
    features = all_features(fclient, "/api/base-floor/?bbox={},{},{},{}&limit=1000".format(*box))
    expected = query(
        features_url,
        "SELECT ogc_fid FROM base_floor WHERE ST_Intersects(wkb_geometry, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
        " ORDER BY 1",
        box,
    )
    assert [f["id"] for f in features] == [row[0] for row in expected]
    assert features and "CW square with hole" not in {f["properties"]["name"] for f in features}


@pytest.mark.parametrize("query_string", ["layer=%00", "layer=" + "w" * 300, "level=one", "bbox=0,0,1", "limit=-1"])
def test_bad_parameters_are_400(fclient, query_string):
    response = fclient.get("/api/base-floor/?" + query_string)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
