"""Search windows that provably contain every short path: what makes a windowed route exact.

DATA.md promises that every open edge costs at least the horizontal geodesic distance between
its two vertices. So along a path of cost <= R from vertex s to vertex t, every vertex v has
geo(s, v) + geo(v, t) <= R: v lies in the geodesic ellipse with foci s and t and major axis R.
An edge of such a path has both ends in that ellipse. `ellipse_cover` returns lon/lat boxes
whose union contains the ellipse, so the edges whose bounding box meets one of the boxes
include every path of cost <= R. A search among them that finds cost C <= R has found the
global optimum; one that finds C > R proves the optimum is <= C, so a second search with
R = C is exact.

The ellipse is drawn in a plane where Euclidean distance is a lower bound of the geodesic
distance on the WGS 84 ellipsoid: v = latitude x 110,574 m (the shortest metre-per-degree of
latitude, at the equator) and u = longitude x 111,319 m x cos(the largest |latitude| any such
path can reach) (a parallel is never shorter than on a sphere of the equatorial radius).
Along any curve ds^2 >= (ky dlat)^2 + (kx dlon)^2, so every curve, the geodesic included, is at
least as long as the straight line in this plane. A margin (1 % + 2 m) absorbs costs computed
on a sphere and float rounding. Inside the box of one degree-ellipse the cover is a few slabs
(a bitmap OR of GiST scans in PostgreSQL), much tighter than one bounding box.
"""

from __future__ import annotations

import math

M_PER_DEG_LAT_MIN = 110_574.0
M_PER_DEG_LON_EQUATOR_MIN = 111_319.0
RELATIVE_MARGIN = 0.01
ABSOLUTE_MARGIN_M = 2.0
MAX_ABS_LAT = 89.0  # closer to a pole, or across the antimeridian: no window, the whole graph
DEFAULT_SLABS = 6

Box = tuple[float, float, float, float]  # (min lon, min lat, max lon, max lat)


def lower_bound_distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """A cheap distance in metres never above the geodesic one (for choosing a first radius)."""
    max_lat = max(abs(a[1]), abs(b[1]))
    if max_lat >= MAX_ABS_LAT:
        return 0.0
    kx = M_PER_DEG_LON_EQUATOR_MIN * math.cos(math.radians(max_lat))
    return math.hypot((a[0] - b[0]) * kx, (a[1] - b[1]) * M_PER_DEG_LAT_MIN)


def ellipse_cover(
    source: tuple[float, float], target: tuple[float, float], radius_m: float, slabs: int = DEFAULT_SLABS
) -> list[Box] | None:
    """Boxes (lon/lat) covering every point p with geo(source, p) + geo(p, target) <= radius_m.

    [] when no such point exists (radius shorter than the distance); None when no window can be
    drawn safely (near a pole or across the antimeridian): search the whole graph instead.
    """
    if not (math.isfinite(radius_m) and radius_m >= 0):
        return None
    r = radius_m * (1 + RELATIVE_MARGIN) + ABSOLUTE_MARGIN_M
    (lon_s, lat_s), (lon_t, lat_t) = source, target
    half_lat = r / M_PER_DEG_LAT_MIN
    max_abs_lat = max(abs(lat_s), abs(lat_t)) + half_lat
    if max_abs_lat >= MAX_ABS_LAT:
        return None
    kx = M_PER_DEG_LON_EQUATOR_MIN * math.cos(math.radians(max_abs_lat))
    ky = M_PER_DEG_LAT_MIN
    # The plane: origin at the source, metres (lower-bound scale).
    tu, tv = (lon_t - lon_s) * kx, (lat_t - lat_s) * ky
    focal = math.hypot(tu, tv)
    if focal > r:
        return []
    a = r / 2  # semi-major axis
    b = math.sqrt(max(a * a - (focal / 2) ** 2, 0.0))  # semi-minor axis
    cu, cv = tu / 2, tv / 2
    if focal > 0:
        cos_t, sin_t = tu / focal, tv / focal
    else:
        cos_t, sin_t = 1.0, 0.0
    half_u = math.sqrt((a * cos_t) ** 2 + (b * sin_t) ** 2)
    half_v = math.sqrt((a * sin_t) ** 2 + (b * cos_t) ** 2)
    boxes = []
    if b < 1e-9 or half_v < 1e-9 or slabs <= 1:
        boxes.append((cu - half_u, cv - half_v, cu + half_u, cv + half_v))
    else:
        # u of the topmost point (the bottommost is symmetric about the centre).
        u_top = cu + (a * a * sin_t * cos_t - b * b * sin_t * cos_t) / half_v
        u_bottom = 2 * cu - u_top
        edges = [cu - half_u + 2 * half_u * k / slabs for k in range(slabs + 1)]
        for u1, u2 in zip(edges, edges[1:], strict=False):
            lows, highs = [], []
            for u in (u1, u2):
                lo, hi = _v_range(u - cu, a, b, cos_t, sin_t)
                lows.append(lo)
                highs.append(hi)
            top = half_v if u1 <= u_top <= u2 else max(highs)
            bottom = -half_v if u1 <= u_bottom <= u2 else min(lows)
            boxes.append((u1, cv + bottom, u2, cv + top))
    # Back to degrees, padded outwards by a hair for float rounding.
    pad = 1e-9
    result = []
    for u1, v1, u2, v2 in boxes:
        box = (
            lon_s + u1 / kx - pad,
            lat_s + v1 / ky - pad,
            lon_s + u2 / kx + pad,
            lat_s + v2 / ky + pad,
        )
        if box[0] < -180 or box[2] > 180:
            return None
        result.append(box)
    return result


def _v_range(du: float, a: float, b: float, cos_t: float, sin_t: float) -> tuple[float, float]:
    """The v-interval (relative to the centre) of the ellipse on the vertical line u = du."""
    ia, ib = 1 / (a * a), 1 / (b * b)
    alpha = sin_t * sin_t * ia + cos_t * cos_t * ib
    beta = 2 * du * sin_t * cos_t * (ia - ib)
    gamma = du * du * (cos_t * cos_t * ia + sin_t * sin_t * ib) - 1
    root = math.sqrt(max(beta * beta - 4 * alpha * gamma, 0.0))
    return (-beta - root) / (2 * alpha), (-beta + root) / (2 * alpha)


def covers(boxes: list[Box], point: tuple[float, float]) -> bool:
    return any(x1 <= point[0] <= x2 and y1 <= point[1] <= y2 for x1, y1, x2, y2 in boxes)
