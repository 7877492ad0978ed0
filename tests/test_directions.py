"""Directions people can follow: maneuvers from the geometry (bands, merging, no step under 2 m),
names from the data (start room, destination, corridors, connectors, levels, buildings), on
constructed paths and on real servers with generated buildings (SIT, IMDF, the demo campus) and
Berlin Hbf."""

from __future__ import annotations

import itertools
import math
import random
import re
import statistics
import time
from contextlib import contextmanager
from decimal import Decimal
from types import SimpleNamespace

import numpy as np
import psycopg2
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st

from indoor.queries.spaces import SpaceRows, graph_lines, space_rows
from indoor.routing import directions, itinerary
from indoor.routing import spaces as spaces_module
from indoor.routing.spaces import Spaces, graph_points
from tests.conftest import SHARED_DATA, run_cli
from tests.imdf_building import write_imdf
from tests.importing import route_client
from tests.sit_building import SitBuilding

ROUTING = SimpleNamespace(
    walking_speed_mps=1.3, stairs_penalty_s=10.0, escalator_penalty_s=5.0, elevator_penalty_s=30.0
)
LON0, LAT0 = 13.40, 52.52
M_LAT = 111_320.0
M_LON = 111_320.0 * math.cos(math.radians(LAT0))
BERLIN = SHARED_DATA / "osm" / "berlin_hbf.osm"


def xy(x: float, y: float) -> list[float]:
    """Metres east/north of a corner, as lon/lat."""
    return [LON0 + x / M_LON, LAT0 + y / M_LAT]


def no_spaces(**rows) -> Spaces:
    found = {"spaces": [], "footprints": [], "connector_rooms": [], "level_names": [], **rows}
    return Spaces(SpaceRows(**found), {"floor": 1, "rooms": 1, "floor_key": "1", "rooms_key": "1"})


def polygon(x0, y0, x1, y1) -> bytes:
    return shapely.to_wkb(shapely.box(*xy(x0, y0), *xy(x1, y1)))


def box(x0, y0, x1, y1) -> tuple:
    """A footprint row's box: xmin, ymin, xmax, ymax in lon/lat."""
    return (*xy(x0, y0), *xy(x1, y1))


def place(x, y, level=0, label=None):
    lon, lat = xy(x, y)
    return itinerary.Place({}, lon, lat, level, label, lon, lat, 0.0)


def corridor(*points, level=0, kind="corridor") -> list:
    """One edge per pair of points (metres), cost = its length."""
    edges = []
    for a, b in zip(points, points[1:], strict=False):
        length = math.dist(a, b)
        edges.append((kind, level, level, length, [xy(*a), xy(*b)]))
    return edges


def steps_of(edges, origin, destination, spaces=None, via=None):
    parts = itinerary.segments(origin, destination, edges)
    legs, positions = itinerary.legs(parts)
    steps = directions.maneuvers(parts, positions, spaces or no_spaces(), origin, destination, via, ROUTING)
    return steps, legs


def kinds(steps) -> list[str]:
    return [s["type"] for s in steps]


# -- the geometry -----------------------------------------------------------------------------


@pytest.mark.parametrize(("end", "expected"), [((20, 20), "left"), ((20, -20), "right")])
def test_an_l_shaped_corridor_is_exactly_one_turn(end, expected):
    # East 20 m, then north (left) or south (right) 20 m, drawn as many short edges with a
    # 0.8 m corner cut (as a visibility graph draws it).
    points = [(x, 0) for x in range(0, 20, 2)] + [(19.4, 0), (20, 0.6 * (1 if end[1] > 0 else -1))]
    points += [
        (20, y) for y in range(2 if end[1] > 0 else -2, end[1] + (1 if end[1] > 0 else -1), 2 if end[1] > 0 else -2)
    ]
    steps, _ = steps_of(corridor(*points), place(*points[0]), place(*points[-1]))
    assert kinds(steps) == ["depart", "turn", "arrive"], steps
    assert steps[1]["modifier"] == expected
    assert steps[0]["bearing_after"] == 90
    assert steps[1]["bearing_before"] == 90 and steps[1]["bearing_after"] == (0 if expected == "left" else 180)
    assert abs(sum(s["distance_m"] for s in steps) - sum(e[3] for e in corridor(*points))) < 0.05


@pytest.mark.parametrize(
    ("angle", "expected"),
    [(10, None), (-15, None), (30, "slight_right"), (-40, "slight_left"), (90, "right"), (-100, "left"),
     (140, "sharp_right"), (-150, "sharp_left"), (170, "uturn"), (-175, "uturn")],
)  # fmt: skip
def test_turns_fall_in_the_bands(angle, expected):
    heading = math.radians(-angle)  # east, then `angle` degrees clockwise (x east, y north)
    corner = (30, 0)
    end = (corner[0] + 30 * math.cos(heading), corner[1] + 30 * math.sin(heading))
    steps, _ = steps_of(corridor((0, 0), corner, end), place(0, 0), place(*end))
    turns = [s for s in steps if s["type"] == "turn"]
    if expected is None:
        assert not turns, steps
    else:
        assert [s["modifier"] for s in turns] == [expected], steps


@pytest.mark.parametrize(
    "levels",
    [(1, 1.0, Decimal("1"), Decimal("1.00"), 1), (None, math.nan, Decimal("NaN"), None, math.nan)],
    ids=["one level written four ways", "no level written three ways"],
)
def test_a_level_written_in_different_ways_is_one_level(levels):
    # A path's levels come as JSON numbers (memory), Decimals (PostgreSQL) or floats, and NULL,
    # NaN and NaN numerics all mean "no level": none of them is a level change.
    points = [(0, 0), (8, 0), (16, 0), (20, 0), (20, 8), (20, 16)]
    edges = [
        ("corridor", level, level, math.dist(a, b), [xy(*a), xy(*b)])
        for level, a, b in zip(levels, points[:-1], points[1:], strict=True)
    ]
    steps, legs = steps_of(edges, place(0, 0, levels[0]), place(20, 16, levels[-1]))
    assert kinds(steps) == ["depart", "turn", "arrive"], steps
    assert steps[1]["modifier"] == "left"


def test_a_door_threshold_jog_is_no_turn():
    # "Bear right 0.8 m, Bear left 13 m" before: a 0.8 m kink between two straight runs.
    edges = corridor((0, 0), (10, 0), (10.6, -0.5), (24, -0.5))
    steps, _ = steps_of(edges, place(0, 0), place(24, -0.5))
    assert kinds(steps) == ["depart", "arrive"], steps


def test_two_kinks_that_make_one_turn_are_one_turn():
    # Right 45 degrees for 1 m, then right again: one right turn by the net angle.
    edges = corridor((0, 0), (10, 0), (10.7, -0.7), (10.7, -12))
    steps, _ = steps_of(edges, place(0, 0), place(10.7, -12))
    assert kinds(steps) == ["depart", "turn", "arrive"]
    assert steps[1]["modifier"] == "right"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.floats(0.05, 25), st.floats(-180, 180)), min_size=1, max_size=25))
def test_no_turn_or_continue_step_is_shorter_than_two_metres(moves):
    points = [(0.0, 0.0)]
    for length, heading in moves:
        x, y = points[-1]
        points.append((x + length * math.sin(math.radians(heading)), y + length * math.cos(math.radians(heading))))
    edges = corridor(*points)
    steps, legs = steps_of(edges, place(*points[0]), place(*points[-1]))
    assert steps[0]["type"] == "depart" and steps[-1]["type"] == "arrive"
    for step in steps:
        if step["type"] in ("turn", "continue"):
            assert step["distance_m"] >= directions.MERGE_M, steps
        leg, coordinate = step["at"]["leg"], step["at"]["coordinate"]
        assert 0 <= coordinate < len(legs[leg].coordinates)
    assert abs(sum(s["distance_m"] for s in steps) - sum(e[3] for e in edges)) <= 0.01 * len(steps)


def walked_cuts(joins: list, headings: list) -> list:
    """Where stretches start, found by walking every piece (what _split_turning_runs must equal)."""
    result, lead = list(joins), None
    for p, joined in enumerate(joins):
        if not joined:
            lead = headings[p]
        elif abs((headings[p] - lead + 540) % 360 - 180) >= 0.5:
            result[p], lead = False, headings[p]
    return result


GRID_TURNS = st.sampled_from([0.0, 90.0, -90.0, 180.0]).map(lambda turn: turn + 1e-9)  # drawn with float noise
CURVE_TURNS = st.floats(-0.1, 0.3)  # a slow curve, mostly one way
NEAR_HALF_A_DEGREE = st.floats(0.45, 0.8) | st.floats(-0.8, -0.45)
ANY_TURN = st.floats(0, 360)


def paths_of(turns):
    return st.lists(st.tuples(st.booleans(), turns), min_size=1, max_size=60)


@settings(max_examples=400)
@given(
    paths_of(GRID_TURNS)
    | paths_of(CURVE_TURNS)
    | paths_of(CURVE_TURNS | NEAR_HALF_A_DEGREE)
    | paths_of(GRID_TURNS | CURVE_TURNS | NEAR_HALF_A_DEGREE | ANY_TURN)
)
@example([(False, 0.0), (True, 0.3), (True, 0.3)])  # a curve turns half a degree over two pieces
@example([(False, 0.0), (True, 0.2), (True, -0.6)])  # a larger change that comes back within half
def test_stretches_turn_where_walking_them_turns(pieces):
    """The stretches (a turn is said where one ends) are cut exactly where walking the path piece
    by piece cuts them, on grids, slow curves and anything between."""
    joins = [False] + [joined for joined, _ in pieces[1:]]
    headings = list(itertools.accumulate(change for _, change in pieces))  # each piece turns by `change`
    headings = [h % 360 for h in headings]
    cut = directions._split_turning_runs(np.array(joins), np.array(headings, dtype=float))
    assert cut.tolist() == walked_cuts(joins, headings)


# -- names from the data --------------------------------------------------------------------------


def test_names_of_rooms_corridors_connectors_levels_and_buildings():
    spaces = no_spaces(
        spaces=[
            ("room", "E023", 0, "A", polygon(-5, -4, 0, 4)),
            ("corridor", "F03", 0, "A", polygon(0, -1, 40, 1)),
            ("room", "Aufzug1", 0, "A", polygon(40, -1, 42, 1)),
            ("room", "Aufzug1", 2, "A", polygon(40, -1, 42, 1)),
            ("area", "Foyer", 2, "A", polygon(20, -10, 40, 10)),
            ("room", "2030", 2, "A", polygon(14, -2, 20, 2)),
        ],
        footprints=[("A", 0, *box(-6, -12, 43, 12)), ("A", 2, *box(-6, -12, 43, 12))],
        level_names=[("A", 0, "EG"), ("A", 2, "2. OG")],
    )
    edges = [
        ("door", 0, 0, 3.0, [xy(-2, 0), xy(1, 0)]),
        *corridor((1, 0), (20, 0), (39, 0)),
        ("door", 0, 0, 2.0, [xy(39, 0), xy(41, 0)]),
        ("elevator", 0, 2, 20.0, [xy(41, 0), xy(41, 0)]),
        ("door", 2, 2, 2.0, [xy(41, 0), xy(39, 0)]),
        *corridor((39, 0), (30, 0), (21, 0), level=2),
        ("door", 2, 2, 2.0, [xy(21, 0), xy(19, 0)]),
        *corridor((19, 0), (17, 0), level=2),
    ]
    origin, destination = place(-2, 0, 0, "E023"), place(17, 0, 2, "2030")
    steps, _ = steps_of(edges, origin, destination, spaces)
    texts = {s["type"]: s for s in steps}
    assert steps[0]["type"] == "depart" and steps[0]["space"]["name"] == "E023"
    assert steps[0]["level_name"] == "EG" and steps[0]["building"] == "A"
    assert any(s["type"] == "enter" and s["space"] == {"name": "F03", "layer": "corridor"} for s in steps), steps
    change = texts["level_change"]
    assert change["connector"] == {"kind": "elevator", "name": "Aufzug1"}
    assert (change["from_level"], change["to_level"], change["direction"]) == (0, 2, "up")
    assert change["from_level_name"] == "EG" and change["to_level_name"] == "2. OG"
    assert change["duration_s"] == round(20.0 / 1.3 + 30.0, 1)
    assert any(s["type"] == "enter" and s["space"] == {"name": "Foyer", "layer": "area"} for s in steps), steps
    door = [s for s in steps if s["type"] == "door"]
    assert door and door[-1]["space"]["name"] == "2030"
    assert steps[-1]["type"] == "arrive" and steps[-1]["space"]["name"] == "2030"
    # The elevator room is not entered as a step of its own: the level change names it.
    assert not any(s["type"] == "enter" and s["space"]["name"] == "Aufzug1" for s in steps)


def test_buildings_left_and_entered_and_the_side_of_arrival():
    spaces = no_spaces(footprints=[("A", 0, *box(0, -10, 30, 10)), ("B", 0, *box(50, -10, 80, 10))])
    edges = corridor((5, 0), (29, 0), (51, 0), (70, 0), (70, 3))
    destination = place(73, 3, 0, "B0.07")  # east of where the way in ends, heading north: on the right
    steps, _ = steps_of(edges, place(5, 0, 0, "A0.01"), destination, spaces)
    assert kinds(steps)[:3] == ["depart", "building_exit", "building_enter"], steps
    assert steps[1]["building"] == "A" and steps[2]["building"] == "B"
    assert steps[-1]["side"] == "right" and steps[-1]["space"]["name"] == "B0.07"


# -- on real servers ----------------------------------------------------------------------------


def _routes(client, url, pairs_wanted, seed=7, lang=None):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT ogc_fid, text, level FROM room_points ORDER BY ogc_fid")
        rooms = cur.fetchall()
    conn.close()
    rnd = random.Random(seed)
    found = []
    for _ in range(pairs_wanted):
        a, b = rnd.sample(rooms, 2)
        query = {"from": a[0], "to": b[0], **({"lang": lang} if lang else {})}
        response = client.get("/api/route/", query_string=query)
        assert response.status_code in (200, 422), response.get_json()
        if response.status_code == 200:
            found.append((a, b, response.get_json()))
    return found


def check_steps(body, origin_name, destination_name):
    steps = body["route"]["instructions"]
    for step in steps:
        assert step["text"] and step["distance_text"]
        if step["type"] in ("turn", "continue"):
            assert step["distance_m"] >= 2.0, steps
        assert 0 <= step["at"]["leg"] < len(body["features"])
        assert 0 <= step["at"]["coordinate"] < len(body["features"][step["at"]["leg"]]["geometry"]["coordinates"])
    assert steps[0]["type"] == "depart" and steps[0]["space"]["name"] == origin_name
    assert steps[0]["text"].startswith(f"Leave {origin_name}")
    assert steps[-1]["type"] == "arrive" and steps[-1]["text"].startswith(f"Arrive at {destination_name}")
    assert abs(sum(s["distance_m"] for s in steps) - body["route"]["distance_m"]) <= 0.01 * len(steps)
    assert abs(sum(s["duration_s"] for s in steps) - body["route"]["duration_s"]) <= 0.1 * len(steps)
    return steps


@contextmanager
def served_building(pg_cluster, redis_url, name: str, *command: str):
    """A database of its own with a building written by `flask indoor <command>` -> (url, client).
    The import may end in exit 1: its check-graph report names rooms nobody can reach."""
    url = pg_cluster.create_database(name)
    assert run_cli(url, "init-db").returncode == 0
    assert run_cli(url, *command).returncode in (0, 1)
    app, client = route_client(url, redis_url)
    try:
        yield url, client
    finally:
        app.extensions["indoor.db"].close()


@pytest.fixture(scope="module")
def sit(pg_cluster, tmp_path_factory, redis_url):
    files = SitBuilding.generate().write(tmp_path_factory.mktemp("sit"))
    with served_building(
        pg_cluster, redis_url, "directions_sit", "import", str(files["xml"]), "--building", "SIT"
    ) as sit:
        yield sit


def test_sit_routes_name_rooms_corridors_connectors_and_levels(sit):
    url, client = sit
    routes = _routes(client, url, 40)
    assert len(routes) >= 30
    seen_connectors, corridors, level_names = set(), set(), set()
    for a, b, body in routes:
        steps = check_steps(body, a[1], b[1])
        for step in steps:
            if step["type"] == "level_change":
                seen_connectors.add(step["connector"].get("name"))
                level_names.add(step.get("to_level_name"))
            if step.get("space", {}).get("layer") == "corridor":
                corridors.add(step["space"]["name"])
        assert any(s["type"] == "door" and s["space"]["name"] == b[1] for s in steps) or steps[-2]["type"] != "door"
    assert {"Stairs West", "Stairs East"} & seen_connectors, seen_connectors
    assert {"Corridor EG", "Corridor 1.OG", "Corridor 2.OG"} & corridors
    assert {"EG", "1.OG", "2.OG"} & level_names
    texts = [s["text"] for _, _, body in routes for s in body["route"]["instructions"]]
    assert any(re.fullmatch(r"Take Stairs (West|East) to level \d \((EG|1\.OG|2\.OG)\)", t) for t in texts), texts
    assert any(
        t.startswith(("Follow corridor Corridor", "Turn left into corridor", "Turn right into corridor")) for t in texts
    )
    # The geometry is the SIT building's L: fewer words than one per edge.
    assert statistics.median(len(body["route"]["instructions"]) for _, _, body in routes) <= 9


def test_imdf_routes_name_walkways_units_and_level_short_names(pg_cluster, tmp_path, redis_url):
    archive = write_imdf(tmp_path / "campus.zip")
    command = ("import", str(archive), "--building", "IMDF")
    with served_building(pg_cluster, redis_url, "directions_imdf", *command) as (url, client):
        routes = _routes(client, url, 30)
        assert len(routes) >= 20
        level_names = set()
        for a, b, body in routes:
            steps = check_steps(body, a[1], b[1])
            level_names |= {s.get("to_level_name") for s in steps if s["type"] == "level_change"}
            level_names |= {s.get("level_name") for s in steps}
        assert {"EG", "1.OG", "2.OG"} & level_names


def test_demo_campus_routes_say_which_building_they_leave_and_enter(pg_cluster, redis_url):
    url = pg_cluster.create_database("directions_demo")
    assert run_cli(url, "init-db").returncode == 0
    assert run_cli(url, "demo", "--buildings", "3").returncode == 0
    app, client = route_client(url, redis_url)
    try:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT ogc_fid FROM room_points WHERE building = 'A' AND level = 1 ORDER BY ogc_fid LIMIT 1),"
                "       (SELECT text FROM room_points WHERE building = 'A' AND level = 1 ORDER BY ogc_fid LIMIT 1),"
                "       (SELECT ogc_fid FROM room_points WHERE building = 'C' AND level = 0 ORDER BY ogc_fid LIMIT 1),"
                "       (SELECT text FROM room_points WHERE building = 'C' AND level = 0 ORDER BY ogc_fid LIMIT 1)"
            )
            a, a_name, c, c_name = cur.fetchone()
        conn.close()
        body = client.get("/api/route/", query_string={"from": a, "to": c}).get_json()
        steps = check_steps(body, a_name, c_name)
        buildings = [(s["type"], s["building"]) for s in steps if s["type"].startswith("building_")]
        assert buildings[0] == ("building_exit", "A") and buildings[-1] == ("building_enter", "C"), buildings
        assert ("building_enter", "B") in buildings
        texts = [s["text"] for s in steps]
        assert any(t.endswith("exit building A") or t == "Exit building A" for t in texts), texts
        assert any(t.endswith("enter building C") or t == "Enter building C" for t in texts), texts
        change = next(s for s in steps if s["type"] == "level_change")
        assert change["from_level"] == 1 and change["to_level"] == 0 and change["direction"] == "down"
    finally:
        app.extensions["indoor.db"].close()


@pytest.fixture(scope="module")
def berlin(pg_cluster, redis_url):
    with served_building(
        pg_cluster, redis_url, "directions_berlin", "import", str(BERLIN), "--building", "Berlin Hbf"
    ) as b:
        yield b


def test_berlin_routes_name_start_destination_and_corridors_with_no_short_turns(berlin):
    url, client = berlin
    routes = _routes(client, url, 47)
    assert len(routes) >= 35
    named_corridor = 0
    for a, b, body in routes:
        steps = check_steps(body, a[1], b[1])
        named_corridor += any(s.get("space", {}).get("layer") == "corridor" for s in steps)
        for step in steps:
            if step["type"] == "level_change":
                assert step["text"].startswith(("Take the ", "Take ")), step
    assert named_corridor >= len(routes) // 3


def test_the_graph_named_at_once_gives_the_names_a_look_up_gives_and_serves_the_routes(berlin):
    """Every point of the walkable graph is named in the background once per version: it must
    name each as the R-trees do, and be where routes find their points (only the stretches from
    a room to the graph are looked up one by one)."""
    url, client = berlin
    assert client.get("/api/route/", query_string={"from": 1, "to": 2}).status_code in (200, 422)
    state = client.application.extensions["indoor.spaces"]
    deadline = time.monotonic() + 60
    while state["spaces"] is None or state["spaces"]._graph_named is None:
        assert time.monotonic() < deadline, "the graph was never named"
        time.sleep(0.1)
    held = state["spaces"]
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        found = [graph_points(rows) for rows in graph_lines(cur)]
    conn.close()
    levels = np.concatenate([f[0] for f in found])
    points = np.concatenate([f[1] for f in found])
    assert len(points) >= 1000
    distinct, level_of = np.unique(levels, return_inverse=True)
    held._named_points.clear()
    named = held.numbers_at(points, level_of, distinct.tolist())
    assert not held._named_points, "graph points were looked up one by one"
    looked_up = held._numbers_at(points, level_of, distinct.tolist())
    assert np.array_equal(named[0], looked_up[0]) and np.array_equal(named[1], looked_up[1])
    assert (named[0] >= 0).sum() > len(points) // 4  # the names are there to compare
    # Routes find their points there: per route, only its two ends' stretches are looked up.
    routes = _routes(client, url, 20, seed=11)
    pieces = sum(len(body["features"]) for _, _, body in routes)
    assert len(routes) >= 15 and len(held._named_points) <= 4 * len(routes) < pieces * 4


def test_after_a_burst_of_edits_only_the_newest_names_are_made(berlin):
    """Naming the graph is seconds of CPU on a large campus: versions a newer one has replaced
    before their turn are not named at all (edits in a row cost one naming, not one each)."""
    url, client = berlin
    app = client.application
    with app.app_context(), psycopg2.connect(url) as conn, conn.cursor() as cur:
        seen = {"floor": 1, "rooms": 1, "floor_key": "1", "rooms_key": "1"}
        burst = [Spaces(space_rows(cur), seen) for _ in range(3)]
        state = spaces_module._state()
        held = state["spaces"]
        try:
            state["spaces"] = burst[-1]
            for version in burst:
                spaces_module._name_graph(version)
        finally:
            state["spaces"] = held
    conn.close()
    assert [version._graph_named is not None for version in burst] == [False, False, True]


def test_footprints_are_not_spoiled_by_rows_another_tool_wrote(sit):
    """A projected or NaN point drawn for the building: its box is made from the usable rows."""
    url, _ = sit
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        clean = sorted(space_rows(cur).footprints)
        cur.execute(
            "INSERT INTO base_floor (layer, level, building, wkb_geometry) VALUES"
            " ('wall', 0, 'SIT', ST_SetSRID(ST_MakePoint(1e6, 1e6), 4326)),"
            " ('wall', 0, 'SIT', ST_SetSRID(ST_MakePoint('NaN', 1), 4326)),"
            " ('wall', 0, 'SIT', ST_SetSRID('POINT EMPTY'::geometry, 4326))"
        )
        assert sorted(space_rows(cur).footprints) == clean and clean
        conn.rollback()
    conn.close()
