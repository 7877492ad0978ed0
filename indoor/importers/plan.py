"""What every importer reads a source into: a building as people map it, before any graph.

Each source format (OSM XML/PBF/GeoJSON, IMDF, GDAL files) has a reader that produces one
`IndoorPlan`: spaces (rooms, corridors, areas, stair and elevator rooms), openings (doors),
routing lines where the source has them, vertical point connectors (elevator nodes), labelled
rooms and the drawn floor plan, all in WGS 84 lon/lat. `indoor.importers.derive` turns a plan
into a `queries.network.Network` (vertices, edges, rooms, plan, level names): it derives a
walkable graph inside spaces, joins it through openings, merges the routing lines and links
levels. Readers know formats; the deriver knows geometry; `queries/network.py` writes rows.

Levels are `Decimal` (OSM-style: 0 ground, -1, 0.5). A feature on several levels (`level=0;2`,
`repeat_on`) carries all of them in `levels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from shapely.geometry.base import BaseGeometry

# Space kinds. Walkable kinds are routed through; rooms only through their openings.
WALKABLE_SPACES = frozenset({"corridor", "area"})
VERTICAL_SPACES = frozenset({"stairs", "escalator", "elevator", "ramp"})
EDGE_KINDS = frozenset({"corridor", "door", "stairs", "escalator", "elevator", "ramp"})


@dataclass
class Space:
    """A polygon people stand in: `room`, `corridor`, `area`, or a vertical one (`stairs`,
    `escalator`, `elevator`, `ramp`) that joins the levels in `levels`."""

    geometry: BaseGeometry  # Polygon or MultiPolygon, lon/lat
    levels: tuple[Decimal, ...]
    kind: str
    name: str | None = None
    category: str | None = None
    routable: bool = True  # False: access=private|no
    wheelchair: bool | None = None  # False: wheelchair=no (accessible routes avoid it)
    source: str = ""  # e.g. "way/123", "unit/<uuid>", "file.shp:17": named in error messages
    oneway: int = 0  # vertical spaces (escalators): 1 only upwards, -1 only downwards, 0 both


@dataclass
class Opening:
    """A door (a point on a space's outline, or an IMDF opening's segment)."""

    geometry: BaseGeometry  # Point or LineString, lon/lat
    levels: tuple[Decimal, ...]
    routable: bool = True
    wheelchair: bool | None = None
    source: str = ""


@dataclass
class Line:
    """A routing line the source already has (`highway=footway|steps`, a CAD network line).

    `levels` is one level for a flat line, or (level at the first point, level at the last
    point) for a line that climbs. `oneway`: 1 only first -> last, -1 only last -> first, 0 both.
    """

    geometry: BaseGeometry  # LineString, lon/lat, drawn first -> last
    levels: tuple[Decimal, ...]
    kind: str = "corridor"
    oneway: int = 0
    routable: bool = True
    wheelchair: bool | None = None
    source: str = ""


@dataclass
class Connector:
    """A vertical point connector: an elevator (or stairs) node serving `levels`."""

    geometry: BaseGeometry  # Point, lon/lat
    levels: tuple[Decimal, ...]
    kind: str = "elevator"
    routable: bool = True
    wheelchair: bool | None = None
    source: str = ""


@dataclass
class Room:
    """A labelled room point (room_points): its label, level and category."""

    geometry: BaseGeometry  # Point, lon/lat
    level: Decimal
    name: str
    category: str | None = None
    source: str = ""


@dataclass
class PlanFeature:
    """A drawn floor-plan feature (base_floor): `layer` is wall, room, corridor, area, door..."""

    geometry: BaseGeometry  # lon/lat
    level: Decimal
    layer: str
    name: str | None = None


@dataclass
class IndoorPlan:
    spaces: list[Space] = field(default_factory=list)
    openings: list[Opening] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    connectors: list[Connector] = field(default_factory=list)
    rooms: list[Room] = field(default_factory=list)
    features: list[PlanFeature] = field(default_factory=list)
    level_names: dict[Decimal, str] = field(default_factory=dict)  # display names (level:ref)


class UnreadableSource(Exception):
    """A source that cannot be imported: the message names the file and the feature."""
