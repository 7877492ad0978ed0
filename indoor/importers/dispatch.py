"""`indoor import PATH`: which format a source is, its reader, and one all-or-nothing write.

The format comes from the content, not the name: an IMDF archive (a folder or a .zip holding
manifest.json / unit.geojson / level.geojson), an OSM PBF (its first block is an `OSMHeader`),
OSM XML (`<osm`), GeoJSON exported from OSM (osmtogeojson / Overpass: feature ids like
`way/123`), and anything else GDAL opens. Every reader produces an `IndoorPlan`;
`derive.derive_network` turns it into rows.

Everything is read and checked before the database is touched; the rows of one import (and,
with `replace`, the deletion of the building's old rows) are one transaction. A source that
cannot be read raises `UnreadableSource` with one line naming the file and the feature.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field

from indoor.importers.gdal import Mapping, read_gdal
from indoor.importers.plan import IndoorPlan, UnreadableSource

OSM_XML, OSM_PBF, OSM_GEOJSON, IMDF, GDAL = "OSM XML", "OSM PBF", "OSM GeoJSON", "IMDF", "GDAL"
IMDF_FILES = frozenset({"manifest.json", "unit.geojson", "level.geojson", "venue.geojson"})
OSM_ID = re.compile(r"^(node|way|relation)/-?\d+$")
# CAD line ends this close meet; a one-level file's open stairs end joins another level's vertex
# this close (metres).
NODE_TOLERANCE_M = 0.25
IMPORT_TIMEOUT_MS = 600_000


class UsageError(Exception):
    """Options that do not fit the source (e.g. a field mapping for an OSM file)."""


@dataclass
class ImportResult:
    format: str
    counts: dict[str, int]
    deleted: dict[str, int] = field(default_factory=dict)
    stairs_joined: int = 0
    stairs_open: int = 0
    closures: dict[str, int] = field(default_factory=dict)  # closures that followed a --replace


def detect_format(path: str) -> str:
    name = os.path.basename(path.rstrip("/"))
    # A device, pipe or socket (a symlink to /dev/zero) would be read for ever: files only.
    mode = os.stat(path).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UnreadableSource(
            f"{name}: not a regular file or a directory (a device, pipe or socket cannot be imported)"
        )
    if os.path.isdir(path):
        return IMDF if IMDF_FILES & set(os.listdir(path)) else GDAL
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = {os.path.basename(n) for n in archive.namelist()}
        except (zipfile.BadZipFile, OSError) as error:
            raise UnreadableSource(f"{name}: not a readable zip archive: {error}") from None
        return IMDF if IMDF_FILES & names else GDAL
    with open(path, "rb") as file:
        head = file.read(4096)
    if b"OSMHeader" in head[:64]:
        return OSM_PBF
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<") and b"<osm" in head:
        return OSM_XML
    if text.startswith(b"{") and _is_osm_geojson(path, name):
        return OSM_GEOJSON
    return GDAL


def _is_osm_geojson(path: str, name: str) -> bool:
    """A FeatureCollection whose features carry OSM ids (`way/123` as id, `@id` or `id`)."""
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except (ValueError, UnicodeDecodeError) as error:
        raise UnreadableSource(f"{name}: not valid JSON: {error}") from None
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list) or not features:
        return False
    for feature in features[:50]:
        if not isinstance(feature, dict):
            continue
        properties = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        for candidate in (feature.get("id"), properties.get("@id"), properties.get("id")):
            if isinstance(candidate, str) and OSM_ID.match(candidate):
                return True
    return False


def read_plan(path: str, source_format: str, mapping: Mapping, routing_lines: bool = True) -> IndoorPlan:
    """The source as an IndoorPlan (without its routing lines if not `routing_lines`). Raises
    UnreadableSource with one line naming the problem."""
    name = os.path.basename(path.rstrip("/"))
    if source_format != GDAL and not mapping.is_default():
        raise UsageError(f"{name} is {source_format}: the mapping options apply to files GDAL reads")
    try:
        if source_format == GDAL:
            plan = _read_gdal(path, mapping)
        elif source_format == IMDF:
            from indoor.importers.imdf import read_imdf

            plan = read_imdf(path)
        else:
            from indoor.importers import osm

            plan = osm.read_plan(path, routing_lines=routing_lines)
        if not routing_lines and source_format in (GDAL, IMDF):
            plan.lines = []
    except (UnreadableSource, UsageError):
        raise
    except Exception as error:  # a reader's parser (XML, protobuf, JSON) failing on bad input
        raise UnreadableSource(f"{name}: {' '.join(str(error).split()) or type(error).__name__}") from None
    if not any((plan.spaces, plan.openings, plan.lines, plan.connectors, plan.rooms, plan.features)):
        raise UnreadableSource(
            f"{name}: no usable features (no rooms, spaces, floor plan, openings, connectors or routing lines)"
        )
    return plan


def _read_gdal(path: str, mapping: Mapping) -> IndoorPlan:
    from indoor.importers.lines import node_lines

    name = os.path.basename(path.rstrip("/"))
    if zipfile.is_zipfile(path):
        path = _inside_zip(path)
    plan = read_gdal(path, mapping, name)
    plan.lines = node_lines(plan.lines, NODE_TOLERANCE_M)
    return plan


def _inside_zip(path: str) -> str:
    """GDAL's path into a zip: the folder holding every file when there is one (an export whose
    files sit in a subfolder), else the archive's root."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
    folders = {os.path.dirname(n) for n in names}
    inner = folders.pop() if len(folders) == 1 else ""
    return "/vsizip/" + os.path.abspath(path) + (f"/{inner}" if inner else "")


def import_plan(db, plan: IndoorPlan, source_format: str, building: str | None, replace: bool) -> ImportResult:
    """Write the plan as `building` (after deleting the building's rows, with `replace`) in one
    transaction; a GDAL file's open stairs ends are joined to the floors already there."""
    from indoor.importers.derive import derive_network
    from indoor.live import closures
    from indoor.queries import buildings, network

    result = ImportResult(format=source_format, counts={})
    with db.transaction(timeout_ms=IMPORT_TIMEOUT_MS) as cur:
        buildings.lock(cur)
        kept = []
        if replace:
            kept = closures.before_replace(cur, building)  # the building's closures follow it
            result.deleted = buildings.delete(cur, building)
        first_vertex, first_edge = network.next_ids(cur)
        rows = derive_network(plan, first_vertex, first_edge, building)
        result.counts = network.write_network(cur, rows)
        buildings.record(cur, building, [v[0] for v in rows.vertices], [e[0] for e in rows.edges])
        if source_format == GDAL:  # CAD floors come one file at a time
            result.stairs_joined, result.stairs_open = buildings.join_open_ends(cur, building, NODE_TOLERANCE_M)
        if kept:
            result.closures = closures.after_replace(cur, building, kept)
    return result
