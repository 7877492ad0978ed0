"""A generated campus: deterministic for a seed, sized from a few hundred rooms to 200,000+ edges.

Each building is a row of levels; each level a grid of corridor nodes `spacing` metres apart,
with a room in most grid cells (a door edge from the room's point to a corner of its cell).
Levels are joined by two stair cores, a pair of one-way escalators (up and down) and an
elevator shaft; buildings stand in one row (or a grid of `columns` per row) and are joined to
their neighbours on level 0 by ramps. Besides its rooms, each building has
facility points with a category (routes take `category:NAME`): toilets in one corner of every
level, the elevator on every level, an entrance at each end of level 0; named rooms have the
category of their name (toilets, shop, service, lounge). The facilities draw no random numbers,
so a seed gives the same layout as before them. Corridors carry a small random
extra cost and a few are one-way, so routes are directed and not all ties.

The layout is drawn in local metres and placed at lon/lat here; `queries.network` computes
every cost in PostGIS (geodesic length + extra), so the DATA.md invariant "cost >= horizontal
geodesic distance" holds by construction.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from indoor.queries.network import Network

# Where the campus stands (near Berlin Hbf); metres -> degrees around this origin.
ORIGIN_LON, ORIGIN_LAT = 13.3690, 52.5250
_M_PER_DEG_LAT = 111_132.0
_M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(ORIGIN_LAT))

NAMED_ROOMS = ["Ticket office", "Toilets", "Café", "Information", "Lost and found", "Pharmacy", "Lounge"]
# room_points.category of the named rooms (routes take `category:NAME`).
CATEGORIES = {
    "Ticket office": "service",
    "Toilets": "toilets",
    "Café": "shop",
    "Information": "service",
    "Lost and found": "service",
    "Pharmacy": "shop",
    "Lounge": "lounge",
}


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    return ORIGIN_LON + x / _M_PER_DEG_LON, ORIGIN_LAT + y / _M_PER_DEG_LAT


@dataclass(frozen=True)
class DemoSize:
    buildings: int = 1
    levels: int = 3
    grid: int = 10  # corridor nodes per side of one level
    spacing: float = 8.0  # metres between corridor nodes
    room_share: float = 0.9  # share of grid cells that are rooms
    one_way_share: float = 0.03  # share of corridors that are one-way
    columns: int = 0  # buildings per row of a grid of buildings; 0: one row

    def estimated_edges(self) -> int:
        g = self.grid
        per_level = 2 * g * (g - 1) + int((g - 1) ** 2 * self.room_share) + 2
        return self.buildings * self.levels * per_level


def generate(size: DemoSize, seed: int = 1, first_vertex: int = 1, first_edge: int = 1) -> Network:
    rnd = random.Random(seed)
    campus = Network()
    next_vertex = first_vertex
    next_edge = first_edge
    g, s = size.grid, size.spacing
    width = (g - 1) * s

    def vertex(level, x, y):
        nonlocal next_vertex
        campus.vertices.append((next_vertex, level, *to_lonlat(x, y)))
        next_vertex += 1
        return next_vertex - 1

    def edge(a, b, kind, extra_fwd=0.0, extra_rev=0.0):
        # extra < 0 means closed in that direction.
        nonlocal next_edge
        campus.edges.append((next_edge, a, b, kind, extra_fwd, extra_rev, None))
        next_edge += 1

    entrances = []  # per building: (west, east, south, north) nodes on level 0
    columns = size.columns or size.buildings
    for b in range(size.buildings):
        bname = _building_name(b)
        row, column = divmod(b, columns)
        x0, y0 = column * (width + 20.0), row * (width + 20.0)
        nodes = {}  # (level, i, j) -> vertex id
        for level in range(size.levels):
            for i in range(g):
                for j in range(g):
                    nodes[level, i, j] = vertex(level, x0 + i * s, y0 + j * s)
            # Corridors along grid lines, a little slower than straight walking, a few one-way.
            for i in range(g):
                for j in range(g):
                    for di, dj in ((1, 0), (0, 1)):
                        if i + di < g and j + dj < g:
                            extra = round(rnd.uniform(0.0, 0.3) * s, 3)
                            closed_back = rnd.random() < size.one_way_share
                            edge(
                                nodes[level, i, j],
                                nodes[level, i + di, j + dj],
                                "corridor",
                                extra,
                                -1.0 if closed_back else extra,
                            )
            # Rooms in grid cells, each with a door to one corner of its cell.
            number = 0
            for i in range(g - 1):
                for j in range(g - 1):
                    if rnd.random() >= size.room_share:
                        continue
                    number += 1
                    cx, cy = x0 + (i + 0.5) * s, y0 + (j + 0.5) * s
                    label = _room_label(bname, level, number, rnd)
                    room_vertex = vertex(level, cx, cy)
                    corner = nodes[level, i + rnd.randint(0, 1), j + rnd.randint(0, 1)]
                    edge(room_vertex, corner, "door")
                    category = CATEGORIES.get(label.rsplit(" ", 1)[0]) if " " in label else None
                    campus.rooms.append((label, level, bname, *to_lonlat(cx, cy), category))
                    inset = 0.4
                    campus.plan.append(
                        (
                            "room",
                            label,
                            level,
                            bname,
                            _rect(
                                x0 + i * s + inset,
                                y0 + j * s + inset,
                                x0 + (i + 1) * s - inset,
                                y0 + (j + 1) * s - inset,
                            ),
                        )
                    )
                    campus.plan.append(("door", None, level, bname, f"POINT({_xy(cx, cy)})"))
            campus.plan.append(("wall", None, level, bname, _ring(x0 - 1, y0 - 1, x0 + width + 1, y0 + width + 1)))
            campus.plan.append(("corridor", None, level, bname, _grid_lines(x0, y0, g, s)))
        # Between levels: stairs (both ways, penalty), escalators (one-way), an elevator shaft.
        mid = g // 2
        for level in range(size.levels - 1):
            up = level + 1
            edge(nodes[level, 0, 0], nodes[up, 1, 0], "stairs", 6.0, 4.0)
            edge(nodes[level, g - 1, g - 1], nodes[up, g - 2, g - 1], "stairs", 6.0, 4.0)
            edge(nodes[level, 0, mid], nodes[up, 1, mid], "escalator", 2.0, -1.0)
            edge(nodes[up, g - 1, mid], nodes[level, g - 2, mid], "escalator", 2.0, -1.0)
        shaft = [vertex(level, x0 + mid * s + 1.5, y0 + mid * s + 1.5) for level in range(size.levels)]
        for level, car in enumerate(shaft):
            edge(nodes[level, mid, mid], car, "door")
            if level:
                edge(shaft[level - 1], car, "elevator", 15.0, 15.0)
        entrances.append((nodes[0, 0, mid], nodes[0, g - 1, mid], nodes[0, mid, 0], nodes[0, mid, g - 1]))
        for level in range(size.levels):
            # Toilets just off the corridor corner (g-1, 0); the elevator at its car.
            toilets = to_lonlat(x0 + width - 1.0, y0 + 1.0)
            campus.rooms.append((f"Toilets {bname}{level} (corner)", level, bname, *toilets, "toilets"))
            car = to_lonlat(x0 + mid * s + 1.5, y0 + mid * s + 1.5)
            campus.rooms.append((f"Elevator {bname}{level}", level, bname, *car, "elevator"))
        for side, x in (("west", x0 - 1.0), ("east", x0 + width + 1.0)):
            campus.rooms.append((f"Entrance {bname} {side}", 0, bname, *to_lonlat(x, y0 + mid * s), "entrance"))
    for b in range(size.buildings):
        if (b + 1) % columns and b + 1 < size.buildings:  # the next in its row
            edge(entrances[b][1], entrances[b + 1][0], "ramp", 2.0, 2.0)
        if b + columns < size.buildings:  # the one behind it
            edge(entrances[b][3], entrances[b + columns][2], "ramp", 2.0, 2.0)
    return campus


def _building_name(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(65 + rem) + name
    return name


def _room_label(bname: str, level: int, number: int, rnd: random.Random) -> str:
    if rnd.random() < 0.03:
        return f"{rnd.choice(NAMED_ROOMS)} {bname}{level}"
    return f"{bname}{level:02d}.{number:02d}"


def _xy(x: float, y: float) -> str:
    lon, lat = to_lonlat(x, y)
    return f"{lon:.8f} {lat:.8f}"


def _rect(x1, y1, x2, y2) -> str:
    # Counter-clockwise exterior ring (RFC 7946).
    return f"POLYGON(({_xy(x1, y1)},{_xy(x2, y1)},{_xy(x2, y2)},{_xy(x1, y2)},{_xy(x1, y1)}))"


def _ring(x1, y1, x2, y2) -> str:
    return f"LINESTRING({_xy(x1, y1)},{_xy(x2, y1)},{_xy(x2, y2)},{_xy(x1, y2)},{_xy(x1, y1)})"


def _grid_lines(x0, y0, g, s) -> str:
    top = (g - 1) * s
    lines = []
    for k in range(g):
        lines.append(f"({_xy(x0 + k * s, y0)},{_xy(x0 + k * s, y0 + top)})")
        lines.append(f"({_xy(x0, y0 + k * s)},{_xy(x0 + top, y0 + k * s)})")
    return "MULTILINESTRING(" + ",".join(lines) + ")"
