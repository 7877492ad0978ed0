"""derive_network on plans drawn in metres (no database): routes across a big hall stay straight."""

import math
import random
import statistics
from decimal import Decimal

import networkx as nx
import shapely
from shapely.geometry import LineString, Point, box

from indoor.importers.derive import derive_network
from indoor.importers.plan import IndoorPlan, Opening, Space

LON0, LAT0 = 13.0, 52.0
M_PER_DEG_LAT = 111_195.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))


def to_lonlat(geometry):
    return shapely.transform(geometry, lambda c: c / [M_PER_DEG_LON, M_PER_DEG_LAT] + [LON0, LAT0])


def to_metres(lon, lat):
    return (lon - LON0) * M_PER_DEG_LON, (lat - LAT0) * M_PER_DEG_LAT


def test_routes_across_a_big_hall_with_obstacles_stay_close_to_straight():
    """A 100 x 60 m hall (80 doors, a column and a long wall inside): between two doors that see
    each other across the hall the derived route is never shorter than the straight line and,
    at the 90th percentile, at most 5 % longer than the best route that keeps 0.4 m off walls."""
    hall = box(0, 0, 100, 60).difference(box(40, 25, 44, 29)).difference(box(70, 10, 72, 50))
    doors = [(x, y) for x in range(2, 100, 4) for y in (0, 60)] + [(x, y) for y in range(2, 60, 4) for x in (0, 100)]
    plan = IndoorPlan(
        spaces=[Space(to_lonlat(hall), (Decimal(0),), "area")],
        openings=[Opening(to_lonlat(Point(d)), (Decimal(0),)) for d in doors],
    )
    network = derive_network(plan, 1, 1, None)
    position = {vertex: to_metres(lon, lat) for vertex, _, lon, lat in network.vertices}
    graph = nx.Graph()
    for _, a, b, _, _, _, _ in network.edges:
        graph.add_edge(a, b, weight=math.dist(position[a], position[b]))
    at_door = {d: next(v for v, p in position.items() if math.dist(p, d) < 0.05) for d in doors}
    # People keep 0.4 m off walls: a door's route enters the hall at the nearest point that far
    # in; where two such points see each other, the best route is the straight line between them.
    inner = hall.buffer(-0.4, join_style="mitre")
    clear = inner.buffer(0.01)
    entry = {d: inner.exterior.interpolate(inner.exterior.project(Point(d))) for d in doors}
    pick = random.Random(5)
    ratios = []
    while len(ratios) < 150:
        a, b = pick.sample(doors, 2)
        if math.dist(a, b) < 20 or not clear.covers(LineString([entry[a], entry[b]])):
            continue
        best = Point(a).distance(entry[a]) + entry[a].distance(entry[b]) + entry[b].distance(Point(b))
        route = nx.shortest_path_length(graph, at_door[a], at_door[b], weight="weight")
        assert route >= math.dist(a, b) - 1e-6
        ratios.append(route / best)
    ratios.sort()
    assert statistics.median(ratios) <= 1.03
    assert ratios[int(0.9 * len(ratios))] <= 1.05
    assert len(network.edges) < 0.5 * len(doors) ** 2 / 2  # no full visibility graph in a big hall


def test_a_room_without_a_door_is_an_island_and_a_private_room_too():
    corridor = box(0, 0, 30, 3)
    rooms = [box(0, 3, 10, 9), box(10, 3, 20, 9), box(20, 3, 30, 9)]
    plan = IndoorPlan(
        spaces=[Space(to_lonlat(corridor), (Decimal(0),), "corridor")]
        + [Space(to_lonlat(r), (Decimal(0),), "room", name=f"R{i}", routable=i != 2) for i, r in enumerate(rooms)],
        openings=[Opening(to_lonlat(Point(5, 3)), (Decimal(0),)), Opening(to_lonlat(Point(25, 3)), (Decimal(0),))],
    )
    from indoor.importers.plan import Room

    plan.rooms = [Room(to_lonlat(r.centroid), Decimal(0), f"R{i}") for i, r in enumerate(rooms)]
    network = derive_network(plan, 1, 1, None)
    graph = nx.Graph((a, b) for _, a, b, *_ in network.edges)
    position = {vertex: to_metres(lon, lat) for vertex, _, lon, lat in network.vertices}
    label = {
        i: next(v for v, p in position.items() if math.dist(p, r.centroid.coords[0]) < 0.05)
        for i, r in enumerate(rooms)
    }
    main = max(nx.connected_components(graph), key=len)
    assert label[0] in main  # a door onto the corridor
    assert label[1] not in main and graph.degree(label[1]) > 0  # no door: its own island
    assert label[2] not in main and graph.degree(label[2]) > 0  # private: its door does not open


def test_rooms_drawn_on_top_of_a_hall_are_walked_around_not_through():
    """A hall with no holes and a shop drawn over its middle (common in OSM): routes across the
    hall go round the shop; the shop's door inside the hall opens onto it."""
    from indoor.importers.plan import Room

    hall, shop = box(0, 0, 40, 20), box(15, 5, 25, 15)
    plan = IndoorPlan(
        spaces=[
            Space(to_lonlat(hall), (Decimal(0),), "area"),
            Space(to_lonlat(shop), (Decimal(0),), "room", name="Shop"),
        ],
        openings=[Opening(to_lonlat(Point(p)), (Decimal(0),)) for p in ((0, 10), (40, 10), (20, 5))],
        rooms=[Room(to_lonlat(Point(20, 10)), Decimal(0), "Shop")],
    )
    network = derive_network(plan, 1, 1, None)
    position = {vertex: to_metres(lon, lat) for vertex, _, lon, lat in network.vertices}
    graph = nx.Graph()
    for _, a, b, *_ in network.edges:
        graph.add_edge(a, b, weight=math.dist(position[a], position[b]))
    vertex = {p: next(v for v, q in position.items() if math.dist(q, p) < 0.05) for p in ((0, 10), (40, 10), (20, 10))}
    path = nx.shortest_path(graph, vertex[0, 10], vertex[40, 10], weight="weight")
    inside = shop.buffer(-0.1)
    assert not any(
        inside.intersects(LineString([position[a], position[b]])) for a, b in zip(path, path[1:], strict=False)
    )
    assert nx.shortest_path_length(graph, vertex[0, 10], vertex[40, 10], weight="weight") > 41  # round it
    assert nx.has_path(graph, vertex[0, 10], vertex[20, 10])  # through the shop's door
