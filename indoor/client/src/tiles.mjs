// Large levels drawn from the vector tiles (`/api/tiles/{z}/{x}/{y}.mvt?level=L`), small ones
// streamed as GeoJSON (stream.mjs).
//
// A streamed level costs the main thread every feature (JSON parsing, MapLibre's copy and diff)
// and its worker the whole level's index before the first tile is cut: on a 50,000-feature level
// that is seconds and long tasks. A tiled level costs only the tiles in view, fetched and decoded
// in MapLibre's workers. The level listing's room count decides (a level's floor plan is a small
// multiple of its rooms); where the line lies, and why, is measured in BENCHMARKS.md ("The map
// page on a 200,000-feature campus"). A page opened with `?tiles=N` tiles the levels of N rooms
// or more (`?tiles=0`: every level, `?tiles=never`: none) for the rest of its life: tests and the
// benchmark use it, a link a user shares does not carry it.

export const TILES_FROM_ROOMS = 2000;
// The tiles' zoom range (indoor/gis/tiles.py): below 16 a tiled level is not drawn.
export const TILE_MIN_ZOOM = 16;
export const TILE_MAX_ZOOM = 20;

const tiled = new Set();

function thresholdFromUrl() {
  const raw = new URLSearchParams(location.search).get("tiles");
  if (raw === "never") return Infinity;
  if (raw !== null && /^\d+$/.test(raw)) return Number(raw);
  return TILES_FROM_ROOMS;
}

/** Choose, once, which levels of `/api/levels/` are tiled. */
export function chooseTiled(levels) {
  const threshold = thresholdFromUrl();
  tiled.clear();
  for (const entry of levels) if ((entry.rooms || 0) >= threshold) tiled.add(Number(entry.level));
  return tiled;
}

export const isTiled = (level) => tiled.has(Number(level));
export const anyTiled = () => tiled.size > 0;
export const tileSource = (level) => `tiles@${level}`;

/** A tiled level's source: its own features only, without the route network the page never draws. */
export function tileSourceSpec(level, bbox) {
  const query = new URLSearchParams({ level: String(level), layers: "rooms,floor" });
  return {
    type: "vector",
    // The workers fetch the tiles: an absolute URL (they do not resolve paths against the page).
    tiles: [`${location.origin}/api/tiles/{z}/{x}/{y}.mvt?${query}`],
    minzoom: TILE_MIN_ZOOM,
    maxzoom: TILE_MAX_ZOOM,
    ...(bbox ? { bounds: bbox } : {}),
  };
}

/** A layer of `kind` on a tiled level: the tile layer it reads and the level it shows. */
export function tiledLayer(layer, id, level, sourceLayer) {
  const onLevel = ["==", ["to-number", ["get", "level"]], Number(level)];
  return {
    ...layer,
    id,
    source: tileSource(level),
    "source-layer": sourceLayer,
    filter: layer.filter ? ["all", onLevel, layer.filter] : onLevel,
  };
}

/** A rendered or tiled room as the page holds rooms: a GeoJSON Feature with the API's properties. */
export function roomFromTile(feature) {
  const { id, name, level, building, category } = feature.properties;
  return {
    type: "Feature",
    id: feature.id ?? id,
    geometry: feature.geometry,
    properties: { name, level, building: building ?? null, category: category ?? null },
  };
}

/**
 * The room inside a clicked outline on a tiled level: the room point of the outline's name drawn
 * within the outline's box (a look at what is drawn there, not at every loaded tile: it also
 * runs on every mouse move).
 */
export function tiledRoomIn(map, outline, roomLayers) {
  const name = outline.properties.name;
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const lngLat of outline.geometry.coordinates.flat(outline.geometry.type === "MultiPolygon" ? 2 : 1)) {
    const { x, y } = map.project(lngLat);
    [minX, minY, maxX, maxY] = [Math.min(minX, x), Math.min(minY, y), Math.max(maxX, x), Math.max(maxY, y)];
  }
  if (!Number.isFinite(minX)) return null;
  const box = [
    [minX, minY],
    [maxX, maxY],
  ];
  const [hit] = map.queryRenderedFeatures(box, { layers: roomLayers, filter: ["==", ["get", "name"], name] });
  return hit ? roomFromTile(hit) : null;
}

/**
 * `onLoaded()` once the tiles in view of a level just shown are all in (the map is idle: a source
 * with no tile requested yet would count as loaded). The first drawn frame is probed by the page
 * as for a streamed level.
 */
export function awaitTiles(map, level, onLoaded) {
  const check = () => {
    if (!map.isSourceLoaded(tileSource(level))) return;
    map.off("idle", check);
    onLoaded();
  };
  map.on("idle", check);
}
