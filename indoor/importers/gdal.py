"""Any file GDAL reads (shapefile, GeoPackage, GeoJSON, DXF, ...) -> IndoorPlan, with a mapping.

Every layer of the file is read with pyogrio and reprojected from its CRS to WGS 84 lon/lat
(pyproj). What a feature becomes depends on its geometry and its kind (`--kind-field`, through
`--kind-map`):

- lines: routing lines (`corridor` unless the kind says `stairs`, `escalator`, `elevator`,
  `ramp` or `door`); a line of kind `wall` is drawn in the floor plan instead;
- points: rooms when they have a name (`--name-field`); `door` points are openings and
  `elevator`/`stairs` points vertical connectors on their levels;
- polygons: the floor plan (layer = the kind, else `room` for a named polygon, else the
  file's layer name); named polygons are also rooms (labelled at a point inside); polygons of
  kind `room`, `corridor`, `area`, `stairs`, `escalator`, `elevator`, `ramp` are also spaces.

The level is `--level` for the whole file, else the `--level-field` value (`1`, `0.5`, `0;2`),
else 0. A feature of kind `skip` is left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyogrio
import pyogrio.errors
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from indoor.importers.osm import parse_levels
from indoor.importers.plan import (
    EDGE_KINDS,
    VERTICAL_SPACES,
    Connector,
    IndoorPlan,
    Line,
    Opening,
    PlanFeature,
    Room,
    Space,
    UnreadableSource,
)

SPACE_KINDS = frozenset({"room", "corridor", "area"}) | VERTICAL_SPACES
# What --kind-map may map a value to.
KINDS = EDGE_KINDS | SPACE_KINDS | {"wall", "skip"}
WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class Mapping:
    """How a GDAL file's fields map onto the plan (the `indoor import` mapping options)."""

    level: Decimal | None = None
    level_field: str | None = None
    kind_field: str | None = None
    kind_map: dict[str, str] = field(default_factory=dict)
    name_field: str | None = None
    category_field: str | None = None
    crs: str | None = None  # the CRS of the coordinates: for a file without one (DXF), or a wrong one

    def is_default(self) -> bool:
        return self == Mapping()


def parse_kind_map(text: str | None) -> dict[str, str]:
    """'3=stairs,4=elevator' -> {'3': 'stairs', '4': 'elevator'}; ValueError names a bad entry."""
    mapping = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        value, sep, kind = entry.partition("=")
        kind = kind.strip().lower()
        if not sep or not value.strip():
            raise ValueError(f"{entry.strip()!r} is not VALUE=KIND")
        if kind not in KINDS:
            raise ValueError(f"{entry.strip()!r}: kind must be one of {', '.join(sorted(KINDS))}")
        mapping[value.strip()] = kind
    return mapping


def read_gdal(path: str, mapping: Mapping, name: str | None = None) -> IndoorPlan:
    """`name`: how messages name the source (the archive for a path inside a zip)."""
    name = name or os.path.basename(path.rstrip("/"))
    if path.lower().endswith(".shp"):
        _check_shapefile(path, name)
    try:
        layers = [str(layer[0]) for layer in pyogrio.list_layers(path)]
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as error:
        raise UnreadableSource(f"{name}: GDAL cannot open it: {_one_line(error)}") from None
    plan = IndoorPlan()
    for layer in layers:
        where = name if len(layers) == 1 else f"{name} layer {layer}"
        _read_layer(path, layer, where, mapping, plan)
    return plan


def _read_layer(path: str, layer: str, where: str, mapping: Mapping, plan: IndoorPlan) -> None:
    try:
        meta, fids, wkb, columns = pyogrio.raw.read(path, layer=layer, return_fids=True)
    except Exception as error:  # GDAL's errors (truncated, corrupt) have many classes
        raise UnreadableSource(f"{where}: GDAL cannot read it: {_one_line(error)}") from None
    fields = {str(f): column for f, column in zip(meta["fields"], columns, strict=True)}
    for option, field_name in (
        ("--level-field", mapping.level_field),
        ("--kind-field", mapping.kind_field),
        ("--name-field", mapping.name_field),
        ("--category-field", mapping.category_field),
    ):
        if field_name and field_name not in fields:
            raise UnreadableSource(f"{where}: {option} {field_name!r}: no such field (fields: {', '.join(fields)})")
    transformer = _transformer(meta.get("crs"), mapping.crs, where)
    layer_name = str(layer)
    for i, blob in enumerate(wkb):
        feature = f"{where}: feature {fids[i] if fids is not None else i}"
        if blob is None:
            continue  # a row without geometry (attributes only) has nothing to place
        try:
            geometry = shapely.force_2d(shapely.from_wkb(blob))
        except shapely.errors.GEOSException as error:
            raise UnreadableSource(f"{feature}: unreadable geometry: {_one_line(error)}") from None
        if geometry.is_empty:
            continue
        geometry = shapely.transform(geometry, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))
        coords = shapely.get_coordinates(geometry)
        if not np.isfinite(coords).all() or (np.abs(coords) > [180, 90]).any():
            raise UnreadableSource(f"{feature}: coordinates outside the earth after reprojection (wrong CRS?)")
        values = {f: _value(column[i]) for f, column in fields.items()}
        _add_feature(plan, geometry, values, mapping, feature, layer_name)


def _add_feature(plan: IndoorPlan, geometry, values: dict, mapping: Mapping, feature: str, layer_name: str) -> None:
    levels = _levels(values, mapping, feature)
    kind = mapping.kind_map.get(values.get(mapping.kind_field) or "", values.get(mapping.kind_field) or "").lower()
    kind = kind if kind in KINDS else ""
    if kind == "skip":
        return
    name = values.get(mapping.name_field) or None
    category = values.get(mapping.category_field) or None
    for part in getattr(geometry, "geoms", [geometry]):
        kind_of_geometry = part.geom_type
        if kind_of_geometry == "LineString":
            if kind == "wall" or kind in ("room", "area"):
                plan.features.extend(PlanFeature(part, level, kind, name) for level in levels)
            else:
                line_kind = kind if kind in EDGE_KINDS else "corridor"
                plan.lines.append(Line(part, (levels[0], levels[-1]), kind=line_kind, source=feature))
        elif kind_of_geometry == "Point":
            if kind == "door":
                plan.openings.append(Opening(part, tuple(levels), source=feature))
            elif kind in VERTICAL_SPACES:
                plan.connectors.append(Connector(part, tuple(levels), kind=kind, source=feature))
            if name:
                plan.rooms.append(Room(part, levels[0], name, category, source=feature))
        elif kind_of_geometry == "Polygon":
            layer = kind or ("room" if name else layer_name)
            plan.features.extend(PlanFeature(part, level, layer, name) for level in levels)
            if name:
                plan.rooms.append(Room(part.point_on_surface(), levels[0], name, category, source=feature))
            if kind in SPACE_KINDS:
                plan.spaces.append(Space(part, tuple(levels), kind, name, category, source=feature))
        elif kind_of_geometry != "GeometryCollection":
            raise UnreadableSource(f"{feature}: {kind_of_geometry} geometries are not imported")
        else:
            _add_feature(plan, part, values, mapping, feature, layer_name)


def _check_shapefile(path: str, name: str) -> None:
    """GDAL reads a cut-off shapefile without an error, as features without geometry: compare
    the lengths its headers declare with the files' sizes first."""
    stem = path[:-4]
    for suffix in (".shp", ".shx"):
        part = next((stem + s for s in (suffix, suffix.upper()) if os.path.exists(stem + s)), None)
        if part is None:
            continue
        with open(part, "rb") as file:
            header = file.read(28)
        declared = int.from_bytes(header[24:28], "big") * 2 if len(header) == 28 else -1
        actual = os.path.getsize(part)
        if declared != actual:
            raise UnreadableSource(
                f"{name}: {os.path.basename(part)} is cut off or damaged: "
                f"its header declares {declared} bytes, the file has {actual}"
            )
    dbf = next((stem + s for s in (".dbf", ".DBF") if os.path.exists(stem + s)), None)
    if dbf:
        with open(dbf, "rb") as file:
            header = file.read(12)
        if len(header) == 12:
            records = int.from_bytes(header[4:8], "little")
            needed = int.from_bytes(header[8:10], "little") + records * int.from_bytes(header[10:12], "little")
            if os.path.getsize(dbf) < needed:
                raise UnreadableSource(
                    f"{name}: {os.path.basename(dbf)} is cut off: {records} records declared, "
                    f"{os.path.getsize(dbf)} of {needed} bytes present"
                )


def _levels(values: dict, mapping: Mapping, feature: str) -> list[Decimal]:
    if mapping.level is not None:
        return [mapping.level]
    if not mapping.level_field:
        return [Decimal(0)]
    raw = values.get(mapping.level_field)
    levels = parse_levels(raw)
    if not levels:
        raise UnreadableSource(f"{feature}: {mapping.level_field}={raw!r} is not a level")
    return levels


def _transformer(file_crs: str | None, given: str | None, where: str) -> Transformer:
    """From the file's CRS (or the one given with --crs, which wins) to WGS 84 lon/lat."""
    if not file_crs and not given:
        raise UnreadableSource(f"{where}: the file has no CRS (give one with --crs, e.g. --crs EPSG:3857)")
    try:
        return Transformer.from_crs(CRS.from_user_input(given or file_crs), WGS84, always_xy=True)
    except (CRSError, ProjError) as error:
        raise UnreadableSource(
            f"{where}: unknown CRS {given or file_crs!r}, cannot reproject it to WGS 84: {_one_line(error)}"
        ) from None


def _value(value) -> str | None:
    """A field value as text: 3 and 3.0 are '3' (kind maps and levels compare text)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).strip()
    return text or None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__
