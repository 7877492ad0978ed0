"""A generated IMDF archive (no IMDF data exists on disk): three levels of one building.

Each level, in metres east/north of a corner: an L-shaped corridor (walkway) with rooms along
both arms, each room with a 1 m door (opening) onto the corridor; a wide hall (lobby) with a
column unit in it and rooms off the hall; a stairs unit and an elevator unit at the same place on
every level (they overlap level to level); an escalator between levels 1 and 2 joined by a
directed relationship (up only). On level 0 one room has no opening at all: unreachable on
purpose. One room is labelled by an occupant through an anchor.
"""

from __future__ import annotations

import json
import math
import uuid
import zipfile
from pathlib import Path

LON0, LAT0 = 13.40, 52.50
LEVELS = {0: "EG", 1: "1.OG", 2: "2.OG"}
SEALED_ROOM = "Sealed 0.99"
OCCUPANT = "Café Nord"
METRES_PER_DEG_LAT = 110_574.0
METRES_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))


def lonlat(x: float, y: float) -> list[float]:
    return [round(LON0 + x / METRES_PER_DEG_LON, 9), round(LAT0 + y / METRES_PER_DEG_LAT, 9)]


def box(x0, y0, x1, y1) -> dict:
    ring = [lonlat(x0, y0), lonlat(x1, y0), lonlat(x1, y1), lonlat(x0, y1), lonlat(x0, y0)]
    return {"type": "Polygon", "coordinates": [ring]}


def polygon(points) -> dict:
    ring = [lonlat(x, y) for x, y in points]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def segment(x0, y0, x1, y1) -> dict:
    return {"type": "LineString", "coordinates": [lonlat(x0, y0), lonlat(x1, y1)]}


def _id(*parts) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


def _feature(feature_type: str, fid: str, geometry, properties: dict) -> dict:
    return {"id": fid, "type": "Feature", "feature_type": feature_type, "geometry": geometry, "properties": properties}


def rooms_of_level(ordinal: int) -> list[tuple[str, tuple, tuple | None, str]]:
    """(name, box, door segment or None, category) for each room of a level."""
    rooms = []
    number = iter(range(1, 100))

    def add(x0, y0, x1, y1, door, category="office"):
        rooms.append((f"Room {ordinal}.{next(number):02d}", (x0, y0, x1, y1), door, category))

    for i in range(16):  # south of the corridor's long arm, doors on y = 20
        x = 5.0 * i
        add(x, 10, x + 5, 20, (x + 2, 20, x + 3, 20), "restroom.female" if i == 5 else "office")
    if ordinal == 0:
        rooms.append((SEALED_ROOM, (92, 10, 97, 20), None, "storage"))
    else:
        add(92, 10, 97, 20, (94, 20, 95, 20))
    for i in range(8):  # north of the corridor, west of the hall, doors on y = 23
        x = 5.0 * i
        add(x, 23, x + 5, 33, (x + 2, 23, x + 3, 23), "classroom")
    add(80, 23, 88.5, 33, (84, 23, 85, 23))
    add(88.5, 23, 97, 33, (92, 23, 93, 23))
    for i in range(8):  # north of the hall, doors on the hall's north wall y = 45
        x = 40 + 5.0 * i
        add(x, 45, x + 5, 53, (x + 2, 45, x + 3, 45))
    for i in range(6):  # east of the corridor's short arm, doors on x = 100
        y = 23 + 5.0 * i
        add(100, y, 108, y + 5, (100, y + 2, 100, y + 3))
    for i in range(4):  # west of the short arm, doors on x = 97
        y = 33 + 5.0 * i
        add(89, y, 97, y + 5, (97, y + 2, 97, y + 3))
    return rooms


def features() -> dict[str, list[dict]]:
    files: dict[str, list[dict]] = {k: [] for k in ("level", "unit", "opening", "anchor", "occupant", "relationship")}
    escalators = {}
    for ordinal, short_name in LEVELS.items():
        level_id = _id("level", ordinal)
        files["level"].append(
            _feature(
                "level",
                level_id,
                box(0, 10, 108, 53),
                {
                    "category": "unspecified",
                    "restriction": None,
                    "ordinal": ordinal,
                    "outdoor": False,
                    "name": {"en": f"Level {ordinal}"},
                    "short_name": {"en": short_name},
                    "display_point": None,
                    "address_id": None,
                    "building_ids": None,
                },
            )
        )

        def unit(key, geometry, category, name=None, ordinal=ordinal, level_id=level_id):
            fid = _id("unit", ordinal, key)
            files["unit"].append(
                _feature(
                    "unit",
                    fid,
                    geometry,
                    {
                        "category": category,
                        "restriction": None,
                        "accessibility": None,
                        "name": {"en": name} if name else None,
                        "alt_name": None,
                        "display_point": None,
                        "level_id": level_id,
                    },
                )
            )
            return fid

        def opening(key, x0, y0, x1, y1, ordinal=ordinal, level_id=level_id):
            files["opening"].append(
                _feature(
                    "opening",
                    _id("opening", ordinal, key),
                    segment(x0, y0, x1, y1),
                    {
                        "category": "pedestrian",
                        "accessibility": None,
                        "access_control": None,
                        "door": {"type": "hinged", "automatic": False, "material": "wood"},
                        "name": None,
                        "alt_name": None,
                        "display_point": None,
                        "level_id": level_id,
                    },
                )
            )

        # The L-shaped corridor and the hall (its south edge is the corridor's north wall).
        unit("corridor", polygon([(0, 20), (100, 20), (100, 53), (97, 53), (97, 23), (0, 23)]), "walkway")
        unit("hall", box(40, 23, 80, 45), "lobby", "Hall")
        unit("column", box(59, 33, 61, 35), "column")
        unit("stairs", box(80, 10, 88, 20), "stairs", "Stairs")
        opening("stairs", 83.5, 20, 84.5, 20)
        unit("elevator", box(88, 14, 92, 20), "elevator", "Elevator")
        opening("elevator", 89.5, 20, 90.5, 20)
        if ordinal in (1, 2):  # open to the hall along its east wall
            escalators[ordinal] = unit("escalator", box(80, 36, 84, 44), "escalator")
        for name, (x0, y0, x1, y1), door, category in rooms_of_level(ordinal):
            fid = unit(name, box(x0, y0, x1, y1), category, name)
            if door:
                opening(name, *door)
            if name == f"Room {ordinal}.03" and ordinal == 0:
                anchor_id = _id("anchor", name)
                files["anchor"].append(
                    _feature("anchor", anchor_id, {"type": "Point", "coordinates": lonlat(12.5, 15)}, {"unit_id": fid})
                )
                files["occupant"].append(
                    _feature(
                        "occupant",
                        _id("occupant", name),
                        None,
                        {"name": {"en": OCCUPANT}, "category": "restaurant", "anchor_id": anchor_id},
                    )
                )
    files["relationship"].append(
        _feature(
            "relationship",
            _id("relationship", "escalator"),
            None,
            {
                "category": "escalator",
                "direction": "directed",
                "origin": {"id": escalators[1], "feature_type": "unit"},
                "intermediary": None,
                "destination": {"id": escalators[2], "feature_type": "unit"},
                "hours": None,
            },
        )
    )
    return files


def write_imdf(path: Path, as_zip: bool = True) -> Path:
    """Write the archive as `path` (a .zip, or a folder): -> path."""
    documents = {
        f"{name}.geojson": json.dumps({"type": "FeatureCollection", "features": items})
        for name, items in features().items()
    }
    documents["manifest.json"] = json.dumps({"version": "1.0.0", "created": "2026-01-01T00:00:00Z", "language": "en"})
    if as_zip:
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in documents.items():
                archive.writestr(f"venue/{name}", text)
    else:
        path.mkdir(parents=True, exist_ok=True)
        for name, text in documents.items():
            (path / name).write_text(text)
    return path
