"""Maneuvers from a path: what a person does, where, and by what name. No language in here: the
words are rendered per request (http/instructions.py) from these fields (API.md, Directions).

How, as the street engines do it, tuned indoors:
- The path is cut into straight pieces (each pair of coordinates of a horizontal segment). A turn
  is the change of heading between the stretch walked so far and the next piece of at least
  MERGE_M: pieces shorter than that (door thresholds, visibility-graph corners, two kinks that
  make one) never decide a turn alone, so their turns merge into one by the net angle.
- Bands: straight below 20 degrees of change, slight to 45, a turn to 135, sharp to 160, else a
  U-turn. Straight changes are never announced.
- Events come from the data, found spatially on each piece's level (routing/spaces.py): entering
  a named room, corridor or area, the door into a named room, leaving a named area or room, a
  building's footprint left or entered, a level change with the connector's name. A turn at the
  same junction as such an event is said with it ("Turn left into corridor F03").
- Last, any turn or continue step shorter than MERGE_M is folded into the step before it (and a
  turn after it takes the net angle), so none remains; nothing merges across a level change, a
  building change, the start or the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np

from indoor.routing.spaces import Space, Spaces, lonlat_of_lines

MERGE_M = 2.0
STRAIGHT_DEG = 20.0
SLIGHT_DEG = 45.0
TURN_DEG = 135.0
SHARP_DEG = 160.0
# A building or space seen for less than this between two stretches of another is a glimpse
# (a footprint's corner, a door's threshold), not a change.
GLIMPSE_M = 1.5
# Where the destination lies beside the way in, it is "on your left/right".
SIDE_MIN_DEG, SIDE_MAX_DEG = 30.0, 150.0
_M_PER_DEG = 111_320.0
PENALTY_KINDS = ("stairs", "escalator", "elevator")


def metres(a, b) -> float:
    dx = (b[0] - a[0]) * math.cos(math.radians((a[1] + b[1]) / 2)) * _M_PER_DEG
    return math.hypot(dx, (b[1] - a[1]) * _M_PER_DEG)


def bearing(a, b) -> float | None:
    dx = (b[0] - a[0]) * math.cos(math.radians((a[1] + b[1]) / 2))
    dy = b[1] - a[1]
    if abs(dx) < 1e-10 and abs(dy) < 1e-10:
        return None
    return math.degrees(math.atan2(dx, dy)) % 360


def turn_angle(before, after):
    """Signed change of heading in [-180, 180): positive turns right (floats or numpy arrays)."""
    return (after - before + 540) % 360 - 180


def modifier(angle: float) -> str:
    size = abs(angle)
    if size < STRAIGHT_DEG:
        return "straight"
    if size >= SHARP_DEG:
        return "uturn"
    side = "right" if angle > 0 else "left"
    if size < SLIGHT_DEG:
        return f"slight_{side}"
    if size < TURN_DEG:
        return side
    return f"sharp_{side}"


@dataclass(slots=True)
class Piece:
    start: list
    end: list
    bearing: float | None
    length: float  # metres on the ground
    cost: float  # this piece's share of its segment's cost
    level: object
    kind: str
    segment: int  # index in the part's segments
    first: bool  # the first piece of its segment
    at: tuple  # (leg, coordinate) where the piece starts
    space: Space | None = None
    building: str | None = None


@dataclass
class Vertical:
    """A segment between levels, whole."""

    seg: object  # itinerary.Segment
    at: tuple
    building: str | None = None
    space: Space | None = None  # the named space where it starts


_NOWHERE = ((math.nan, math.nan),)  # where a segment with nothing to draw "is"


def _lonlat(coordinates: list) -> np.ndarray:
    """Coordinates as an (n, 2) array of lon, lat (a third value, where a tool wrote one, dropped)."""
    return lonlat_of_lines((coordinates,), len(coordinates))


def _level_numbers(levels: tuple) -> tuple[np.ndarray, list]:
    """Levels as numbers, equal levels equal numbers (NULL and NaN alike), and each number's level
    as a float (NaN where it is none: NULL, NaN, +-Infinity). A path has a handful of distinct
    levels among hundreds of values: each distinct one is read once."""
    numbers = dict.fromkeys(levels)
    classes: dict = {}
    values: list[float] = []
    for level in numbers:
        value = math.nan if level is None else float(level)
        key = value if value == value else "NaN"  # one number for every NaN and for NULL
        number = classes.get(key)
        if number is None:
            number = classes[key] = len(values)
            values.append(value if math.isfinite(value) else math.nan)
        numbers[level] = number
    return np.fromiter(map(numbers.__getitem__, levels), np.int64, len(levels)), values


def _pick(values, wanted: list) -> tuple | list:
    """values[k] for each k of `wanted`, in one C-level call."""
    if len(wanted) == len(values):
        return values
    if len(wanted) < 2:
        return [values[k] for k in wanted]
    return itemgetter(*wanted)(values)


def _smooth(found: np.ndarray, same: np.ndarray, length: np.ndarray) -> None:
    """A value seen for less than GLIMPSE_M between stretches of one other value is that value.
    In place on `found` (indices into a list, -1: none), compared by `same` (equal entries of
    the list share a number; same[-1] is -1)."""
    key = same[found]
    bounds = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1, [len(found)]))
    if len(bounds) < 4:  # fewer than three runs: nothing lies between two others
        return
    run_length = np.add.reduceat(length, bounds[:-1]).tolist()
    run_key, run_value = key[bounds[:-1]].tolist(), found[bounds[:-1]].tolist()
    for r in range(1, len(run_key) - 1):
        if run_length[r] < GLIMPSE_M and run_key[r - 1] == run_key[r + 1]:
            found[bounds[r] : bounds[r + 1]] = run_value[r - 1]
            run_key[r], run_value[r] = run_key[r - 1], run_value[r - 1]


def _items(parts, positions, spaces: Spaces) -> list:
    """The part as Pieces and Verticals in travel order. Each horizontal segment is cut into
    straight pieces (each pair of its coordinates), named by where its middle lies (space,
    building; a glimpse smoothed away), and consecutive pieces that run straight on (within half
    a degree of the stretch's first) in the same space, building, kind and level are joined: a
    corridor drawn as many edges is walked as one stretch. Done on flat arrays, since a long
    route has hundreds of pieces (most edges are one) and a few dozen stretches: only the
    stretches become objects."""
    if not parts:
        return []
    # One scale for the whole route: a campus spans far less than a degree of latitude.
    first = next((seg.coordinates[0] for seg in parts if seg.coordinates), None)
    scale = math.cos(math.radians(first[1])) if first else 1.0
    kinds, from_levels, to_levels, costs, lines = zip(*parts, strict=True)  # Segments are tuples
    level_number_of, level_values = _level_numbers(from_levels + to_levels)
    level_number_of, to_number = level_number_of[: len(parts)], level_number_of[len(parts) :]
    vertical = level_number_of != to_number
    horizontal = np.flatnonzero(~vertical)
    horizontal_list = horizontal.tolist()
    flat_lines = _pick(lines, horizontal_list)
    # Every horizontal coordinate (a segment with none counts one, at NaN) and where it is drawn.
    count = np.fromiter(map(len, flat_lines), np.int64, len(flat_lines))
    slots = np.maximum(count, 1)
    xy = lonlat_of_lines([line or _NOWHERE for line in flat_lines], int(slots.sum()))
    legs, indices = zip(*positions, strict=True)
    leg = np.repeat(np.array(legs, dtype=np.int64)[horizontal], slots)
    # Each coordinate's index in its leg (itinerary.legs gives one for a segment with none).
    index = np.fromiter(chain.from_iterable(_pick(indices, horizontal_list)), np.int64, len(xy))
    # Pieces: count - 1 per drawn segment, one (with nothing to draw) per other.
    per = np.where(count >= 2, count - 1, 1)
    pieces = int(per.sum())
    first_piece = np.cumsum(per) - per
    segment = np.repeat(horizontal, per)  # each piece's segment in `parts`
    start = np.repeat(np.cumsum(slots) - slots - first_piece, per) + np.arange(pieces)
    drawn = np.repeat(count >= 2, per)
    first_of_segment = np.zeros(pieces, dtype=bool)
    first_of_segment[first_piece] = True
    a = xy[start]
    b = xy[np.minimum(start + 1, len(xy) - 1)]
    dx, dy = (b[:, 0] - a[:, 0]) * scale, b[:, 1] - a[:, 1]
    length = np.where(drawn, np.hypot(dx, dy) * _M_PER_DEG, 0.0)
    heading = np.degrees(np.arctan2(dx, dy)) % 360
    heading[((dx == 0) & (dy == 0)) | ~drawn] = np.nan
    # Each piece's share of its segment's cost, by length (all of it to the first if none has any).
    total = np.repeat(np.add.reduceat(length, first_piece), per)
    whole = np.array(costs, dtype=float)[segment]
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = np.where(total > 0, whole * (length / total), np.where(first_of_segment, whole, 0.0))
    middle = (a + b) / 2
    # The names of each piece's middle, and of where each vertical starts, in one lookup.
    vertical_segments = np.flatnonzero(vertical).tolist()
    vertical_starts = [s for s in vertical_segments if parts[s].coordinates]
    points = np.concatenate((middle, _lonlat([parts[s].coordinates[0] for s in vertical_starts])))
    level_at = np.concatenate((level_number_of[segment], level_number_of[vertical_starts]))
    space, building = spaces.numbers_at(points, level_at, level_values)
    vertical_names = dict(
        zip(vertical_starts, zip(space[pieces:].tolist(), building[pieces:].tolist(), strict=True), strict=True)
    )
    space, building = space[:pieces], building[:pieces]
    space[~drawn] = -1
    building[~drawn] = -1
    _smooth(building, spaces.building_same, length)
    _smooth(space, spaces.space_same, length)
    # Which piece joins the stretch before it: the same kind (no door), level, space and
    # building, both with a heading, no level change between, and within half a degree of the
    # stretch's first heading (so a slow curve is still cut where it has turned).
    kind_number = {k: n for n, k in enumerate(dict.fromkeys(kinds))}
    kind_of = np.fromiter(map(kind_number.__getitem__, kinds), np.int64, len(kinds))
    kind = kind_of[segment]
    door = (kind_of == kind_number.get("door", -1))[segment]
    same_level = level_number_of[segment]
    verticals_before = np.cumsum(vertical)[segment]
    joins = np.zeros(pieces, dtype=bool)
    if pieces > 1:
        space_key, building_key = spaces.space_same[space], spaces.building_same[building]
        joins[1:] = (
            (kind[1:] == kind[:-1])
            & ~door[1:]
            & (same_level[1:] == same_level[:-1])
            & (space_key[1:] == space_key[:-1])
            & (building_key[1:] == building_key[:-1])
            & (verticals_before[1:] == verticals_before[:-1])
            & ~np.isnan(heading[1:])
            & ~np.isnan(heading[:-1])
        )
    joins = _split_turning_runs(joins, heading)
    # Objects: one Piece per stretch (its first piece to the one before the next stretch's), the
    # Verticals between them; each stretch's fields read from the arrays in one go.
    opening = np.flatnonzero(~joins)  # joins[0] is False: the first piece starts a stretch
    closing = np.append(opening[1:], pieces)[: len(opening)] - 1  # (no piece: no stretch)
    from_xy = start[opening]
    to_xy = np.minimum(start[closing] + 1, len(xy) - 1)  # where a drawn stretch's last piece ends
    segment_at = segment[opening].tolist()
    fields = zip(
        segment_at,
        xy[from_xy].tolist(),
        xy[to_xy].tolist(),
        heading[opening].tolist(),
        np.add.reduceat(length, opening).tolist() if pieces else [],
        np.add.reduceat(cost, opening).tolist() if pieces else [],
        leg[from_xy].tolist(),
        index[from_xy].tolist(),
        drawn[opening].tolist(),
        first_of_segment[opening].tolist(),
        space[opening].tolist(),
        building[opening].tolist(),
        strict=True,
    )
    space_list, building_list = spaces.space_list, spaces.building_list
    verticals = _verticals(parts, positions, vertical_segments, vertical_names, spaces)
    result = []
    placed = 0
    for s, a_k, b_k, bearing_k, length_k, cost_k, leg_k, index_k, drawn_k, first_k, space_k, building_k in fields:
        while placed < len(verticals) and verticals[placed][0] < s:
            result.append(verticals[placed][1])
            placed += 1
        seg = parts[s]
        if drawn_k:
            piece = Piece(a_k, b_k, None if bearing_k != bearing_k else bearing_k, length_k, cost_k,
                          seg.from_level, seg.kind, s, first_k, (leg_k, index_k))  # fmt: skip
        else:
            piece = Piece(None, None, None, 0.0, cost_k, seg.from_level, seg.kind, s, True, (leg_k, index_k))
        piece.space = space_list[space_k] if space_k >= 0 else None
        piece.building = building_list[building_k] if building_k >= 0 else None
        result.append(piece)
    result.extend(v for _, v in verticals[placed:])
    return result


def _split_turning_runs(joins: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """`joins` with a new stretch wherever a joined piece has turned half a degree or more from its
    stretch's first (which the pieces after it then compare to)."""
    runs = np.maximum.accumulate(np.where(joins, 0, np.arange(len(joins))))  # each piece's run start
    with np.errstate(invalid="ignore"):
        turned = joins & (np.abs(turn_angle(heading[runs], heading)) >= 0.5)
        if not turned.any():  # no run turns (a corridor drawn straight)
            return joins
        # Each joined piece's change from the one before. Where every change is either half a
        # degree or more beyond all the small ones together, or so small that all of them never
        # add up to half a degree (a path on a grid, a corridor drawn in exact right angles),
        # exactly the large changes cut: no walk needed.
        step = np.abs(turn_angle(heading[:-1], heading[1:]))
    joined = step[joins[1:]]
    small = joined < 0.5
    drift = float(joined[small].sum())
    if drift < 0.5 and (small.all() or float(joined[~small].min()) >= 0.5 + drift):
        cut = joins.copy()
        cut[1:] &= step < 0.5
        return cut
    join_list, heading_list = joins.tolist(), heading.tolist()
    for run in np.unique(runs[turned]).tolist():
        lead = heading_list[run]
        p = run + 1
        while p < len(join_list) and join_list[p]:
            if abs(turn_angle(lead, heading_list[p])) >= 0.5:
                join_list[p] = False  # a new stretch from here: the ones after compare to it
                lead = heading_list[p]
            p += 1
    return np.array(join_list, dtype=bool)


def _verticals(parts, positions, segments: list, names: dict, spaces: Spaces) -> list:
    """(segment, Vertical) for the segments between levels, each with the space and building
    where it starts."""
    result = []
    for s in segments:
        leg, indices = positions[s]
        space, building = names.get(s, (-1, -1))
        vertical = Vertical(parts[s], (leg, indices[0] if indices else 0))
        vertical.building = spaces.building_list[building] if building >= 0 else None
        vertical.space = spaces.space_list[space] if space >= 0 else None
        result.append((s, vertical))
    return result


def _level_fields(spaces: Spaces, level, building) -> dict:
    fields = {"level": _json_level(level)}
    name = spaces.level_name(level, building)
    if name:
        fields["level_name"] = name
    return fields


def _json_level(value):
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number


def _space_fields(space: Space | None) -> dict:
    return {"space": {"name": space.name, "layer": space.layer}} if space else {}


class _Builder:
    """One part of a route (between two stops) as maneuvers."""

    def __init__(self, spaces: Spaces, origin, destination, via: int | None):
        self.spaces = spaces
        self.origin = origin
        self.destination = destination
        self.via = via  # the via's number when this part ends at a via
        self.out: list[dict] = []
        self.run_bearing = None  # heading of the stretch walked since the last decided turn
        self.waiting_bearing: dict | None = None  # a depart/continue that takes the next heading
        self.junction: dict | None = None  # an event maneuver a turn at this junction joins
        self.in_destination = False  # through the door into a destination the plan does not draw
        self.short_bearing = None  # a heading for a depart that meets no long piece
        self._fields: dict = {}  # (level, building) -> its level fields, worked out once

    def emit(self, kind: str, at: tuple, level, in_building, **fields) -> dict:
        maneuver = {"type": kind, **fields}
        known = self._fields.get((level, in_building))
        if known is None:
            known = self._fields[(level, in_building)] = _level_fields(self.spaces, level, in_building)
        maneuver.update(known)
        if in_building and "building" not in maneuver:
            maneuver["building"] = in_building
        maneuver["at"] = {"leg": at[0], "coordinate": at[1]}
        maneuver["distance_m"] = 0.0
        self.out.append(maneuver)
        return maneuver

    def build(self, items: list) -> list[dict]:
        pieces = [item for item in items if isinstance(item, Piece)]
        origin_space = self._origin_space(pieces)
        space = origin_space
        building = next((p.building for p in pieces if p.building), None)
        first_at = items[0].at
        first_level = pieces[0].level if pieces else self.origin.level
        depart = self.emit("depart", first_at, first_level, building, **_space_fields(origin_space))
        self.waiting_bearing = depart
        after_vertical = False
        # Where a run of door segments starts (a door drawn as two edges through its node is one door).
        doors = [
            k
            for k, item in enumerate(items)
            if isinstance(item, Piece)
            and item.kind == "door"
            and item.first
            and not (k > 0 and isinstance(items[k - 1], Piece) and items[k - 1].kind == "door")
        ]
        for k, item in enumerate(items):
            if item.building != building and k > 0 and not (isinstance(item, Vertical) and item.building is None):
                self._building_change(item, building)
                building = item.building
            if isinstance(item, Vertical):
                self._vertical(item, building)
                after_vertical = True
                continue
            piece = item
            if after_vertical:
                self._continue(piece, building)
                after_vertical = False
            if piece.kind == "door":
                if piece.first and k in doors:
                    space = self._door(items, k, doors, space, origin_space, building)
            elif piece.space is not None and piece.space != space:
                self.junction = self.emit("enter", piece.at, piece.level, building, **_space_fields(piece.space))
                space = piece.space
            elif piece.space is None and space is not None and not self.in_destination:
                if space != origin_space and space.layer != "corridor":
                    self.junction = self.emit("leave", piece.at, piece.level, building, **_space_fields(space))
                space = None
            self._heading(piece, building)
            self.out[-1]["distance_m"] += piece.cost
        if self.waiting_bearing is not None and self.short_bearing is not None:
            self.waiting_bearing["bearing_after"] = round(self.short_bearing)
        self._arrive(pieces, space, building)
        return self.out

    def _origin_space(self, pieces) -> Space | None:
        label = self.origin.label
        first = pieces[0].space if pieces else None
        if label:  # a room place: the route starts in it, whether or not it is drawn
            return first if first is not None and first.name == label else Space(label, "room", None)
        return first

    def _heading(self, piece: Piece, building) -> None:
        if piece.bearing is not None and self.waiting_bearing is not None and self.short_bearing is None:
            self.short_bearing = piece.bearing
        if piece.bearing is None or piece.length < MERGE_M:
            return  # too short to decide a heading: its turn merges into the next one's
        if self.run_bearing is None:
            if self.waiting_bearing is not None:
                self.waiting_bearing["bearing_after"] = round(piece.bearing)
                self.waiting_bearing = None
            if self.junction is not None:
                self.junction["bearing_after"] = round(piece.bearing)
                self.junction = None
            self.run_bearing = piece.bearing
            return
        angle = turn_angle(self.run_bearing, piece.bearing)
        turn = modifier(angle)
        junction, self.junction = self.junction, None
        if junction is not None and turn != "uturn":
            junction.update(modifier=turn, bearing_before=round(self.run_bearing), bearing_after=round(piece.bearing))
        elif turn != "straight":
            maneuver = self.emit("turn", piece.at, piece.level, building, modifier=turn)
            maneuver.update(bearing_before=round(self.run_bearing), bearing_after=round(piece.bearing))
            if piece.space is not None:
                maneuver.update(_space_fields(piece.space))
        self.run_bearing = piece.bearing

    def _continue(self, piece: Piece, building) -> None:
        maneuver = self.emit("continue", piece.at, piece.level, building, modifier="straight")
        maneuver.update(_space_fields(piece.space))
        self.waiting_bearing = maneuver
        self.short_bearing = None
        self.run_bearing = None

    def _vertical(self, item: Vertical, building) -> None:
        seg, at = item.seg, item.at
        last = self.out[-1]
        if (
            last["type"] == "level_change"
            and last["connector"]["kind"] == seg.kind
            and last["to_level"] == _json_level(seg.from_level)
        ):
            last["to_level"] = _json_level(seg.to_level)
            name = self.spaces.level_name(seg.to_level, building)
            last.pop("to_level_name", None)
            if name:
                last["to_level_name"] = name
            last["direction"] = "up" if float(last["to_level"]) > float(last["from_level"]) else "down"
            last["distance_m"] += seg.cost
            return
        self.junction = None
        self.waiting_bearing = None
        start = seg.coordinates[0] if seg.coordinates else None
        connector = {"kind": seg.kind}
        if start is not None:
            name = self.spaces.connector_name(seg.kind, start[0], start[1], seg.from_level, item.space)
            if name:
                connector["name"] = name
        maneuver = self.emit("level_change", at, seg.from_level, building, modifier="straight", connector=connector)
        maneuver["from_level"] = _json_level(seg.from_level)
        maneuver["to_level"] = _json_level(seg.to_level)
        for key, level in (("from_level_name", seg.from_level), ("to_level_name", seg.to_level)):
            name = self.spaces.level_name(level, building)
            if name:
                maneuver[key] = name
        maneuver["direction"] = "up" if float(seg.to_level) > float(seg.from_level) else "down"
        maneuver["distance_m"] += seg.cost
        self.run_bearing = None

    def _building_change(self, item, building) -> None:
        level = item.level if isinstance(item, Piece) else item.seg.from_level
        if item.building is None:
            maneuver = self.emit("building_exit", item.at, level, None, building=building)
        else:
            maneuver = self.emit("building_enter", item.at, level, item.building, building=item.building)
            if building is not None:
                maneuver["from_building"] = building
        # A turn where the building changes is said with it ("Turn right and exit building A").
        self.junction = maneuver if isinstance(item, Piece) and "from_building" not in maneuver else None

    def _door(self, items, k, doors, space, origin_space, building):
        """The door that opens into a named room, or into the destination, is said; others
        (the start room's own door: "Leave ..." says it) are walked through silently."""
        piece = items[k]
        beside = [items[j] for j in (k - 1, k + 1) if 0 <= j < len(items)]
        seg_end = next(
            (j for j in range(k + 1, len(items)) if getattr(items[j], "segment", None) != piece.segment), None
        )
        if any(isinstance(item, Vertical) for item in beside) or (
            seg_end is not None and isinstance(items[seg_end], Vertical)
        ):
            return space  # an elevator's or a staircase's own door: the level change says it
        after = None
        for item in items[k + 1 :]:
            if not isinstance(item, Piece):
                break
            if item.kind != "door" and item.space is not None:
                after = item.space
                break
            if item.kind != "door":
                break
        last_door = k == doors[-1]
        into = None
        if after is not None and after.layer == "room" and after != space:
            into = after
        elif last_door and self.destination.label and self.via is None:
            into = Space(self.destination.label, "room", None)
            self.in_destination = True
        if into is None:
            if space is not None and space == origin_space:
                return space
            if len(doors) and k == doors[0] and space is None and origin_space is not None:
                return space
            self.junction = self.emit("door", piece.at, piece.level, building)
            return space
        self.junction = self.emit("door", piece.at, piece.level, building, **_space_fields(into))
        return into

    def _arrive(self, pieces, space, building) -> None:
        destination = self.destination
        end = [destination.lon, destination.lat]
        at_leg, at_coordinate = pieces[-1].at if pieces else (0, 0)
        if pieces and pieces[-1].end is not None:
            at_coordinate += 1
        fields = {}
        name = destination.label or (space.name if space else None)
        if name:
            fields["space"] = {"name": name, "layer": space.layer if space and space.name == name else "room"}
        if self.via is not None:
            fields["via"] = self.via
        side = self._side(pieces, end)
        if side:
            fields["side"] = side
        maneuver = self.emit("arrive", (at_leg, at_coordinate), destination.level, building, **fields)
        if self.run_bearing is not None:
            maneuver["bearing_before"] = round(self.run_bearing)

    def _side(self, pieces, end) -> str | None:
        """Left or right where the destination lies clearly beside the last long stretch."""
        long = [p for p in pieces if p.bearing is not None and p.length >= MERGE_M]
        if not long:
            return None
        last = long[-1]
        if metres(last.end, end) < 0.5:
            return None
        towards = bearing(last.end, end)
        if towards is None:
            return None
        angle = turn_angle(last.bearing, towards)
        if SIDE_MIN_DEG <= abs(angle) <= SIDE_MAX_DEG:
            return "right" if angle > 0 else "left"
        return None


def _drop_connector_rooms(steps: list[dict]) -> list[dict]:
    """Entering the staircase or elevator room the next step takes is said by that step."""
    for k in range(len(steps) - 2, 0, -1):
        step, following = steps[k], steps[k + 1]
        name = (step.get("space") or {}).get("name")
        if (
            step["type"] in ("enter", "door")
            and following["type"] == "level_change"
            and name is not None
            and following["connector"].get("name") == name
        ):
            steps[k - 1]["distance_m"] += step["distance_m"]
            del steps[k]
    return steps


# A step right after a level change that only walks a few metres to the next one is said by it.
CONTINUE_MERGE_M = 5.0


def _merge_openings(steps: list[dict]) -> list[dict]:
    """Fewer words where one sentence says it: "Leave E023 and follow corridor F03" when the
    corridor starts at the room's door, and no "Continue" a few metres before the next step."""
    k = 0
    while k < len(steps) - 1:
        step, following = steps[k], steps[k + 1]
        if (
            step["type"] == "depart"
            and step.get("space")
            and step["distance_m"] < MERGE_M
            and following["type"] == "enter"
            and following["space"]["name"] != step["space"]["name"]
        ):
            step["onto"] = following["space"]
            step["distance_m"] += following["distance_m"]
            if "bearing_after" in following:
                step["bearing_after"] = following["bearing_after"]
            del steps[k + 1]
            continue
        if (
            step["type"] == "enter"
            and following["type"] == "arrive"
            and step.get("modifier", "straight") == "straight"
            and following.get("space", {}).get("name") == step["space"]["name"]
            and k > 0
        ):  # "Enter 2030" then "Arrive at 2030": the arrival says it
            steps[k - 1]["distance_m"] += step["distance_m"]
            del steps[k]
            continue
        if (
            step["type"] == "continue"
            and step["distance_m"] < CONTINUE_MERGE_M
            and following["type"] in ("enter", "door", "turn", "leave")
        ):
            following["at"] = step["at"]
            following["distance_m"] += step["distance_m"]
            del steps[k]
            continue
        k += 1
    return steps


def _fold_short_steps(steps: list[dict]) -> list[dict]:
    """No turn or continue step shorter than MERGE_M: its distance goes to the step before; a turn
    right after it takes the net angle (two kinks that make one), or goes too when that is straight."""
    changed = True
    while changed:
        changed = False
        for k in range(1, len(steps) - 1):
            step = steps[k]
            if step["type"] not in ("turn", "continue") or step["distance_m"] >= MERGE_M:
                continue
            steps[k - 1]["distance_m"] += step["distance_m"]
            following = steps[k + 1]
            before = step.get("bearing_before")
            if following["type"] == "turn" and before is not None and "bearing_after" in following:
                net = modifier(turn_angle(before, following["bearing_after"]))
                following["bearing_before"] = before
                following["modifier"] = net
                if net == "straight":
                    steps[k - 1]["distance_m"] += following["distance_m"]
                    del steps[k + 1]
            elif step["type"] == "continue" and "bearing_after" in step and following["type"] == "turn":
                following.pop("bearing_before", None)
                following["type"] = "continue"
                following["modifier"] = "straight"
            del steps[k]
            changed = True
            break
    return steps


def maneuvers(parts: list, positions: list, spaces: Spaces, origin, destination, via: int | None, settings) -> list:
    """The maneuvers of one part of a route (from `origin` to `destination`, the via numbered
    `via` or the end when None): `parts` its segments (itinerary.Segment) in travel order,
    `positions[k]` = (leg index, [coordinate index in the leg of each of segment k's coordinates])."""
    items = _items(parts, positions, spaces)
    if not items:
        return []
    steps = _Builder(spaces, origin, destination, via).build(items)
    steps = _merge_openings(_fold_short_steps(_drop_connector_rooms(steps)))
    for step in steps:
        step["distance_m"] = round(step["distance_m"], 2)
        penalty = 0.0
        if step["type"] == "level_change" and step["connector"]["kind"] in PENALTY_KINDS:
            penalty = getattr(settings, f"{step['connector']['kind']}_penalty_s")
        step["duration_s"] = round(step["distance_m"] / settings.walking_speed_mps + penalty, 1)
    return steps


def arrival_only(spaces: Spaces, destination, at: tuple) -> list[dict]:
    """A route of length zero: one arrive step."""
    fields = {}
    if destination.label:
        fields["space"] = {"name": destination.label, "layer": "room"}
    step = {"type": "arrive", **fields, **_level_fields(spaces, destination.level, None)}
    step.update(at={"leg": at[0], "coordinate": at[1]}, distance_m=0.0, duration_s=0.0)
    return [step]
