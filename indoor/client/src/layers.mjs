// The map's style: no basemap, the floor plan by layer, room labels and the route.
//
// Each level has sources of its own (`floor@L`, `rooms@L`) and layers of its own, shown or hidden
// as the user switches level. A shared source filtered by level would make every switch re-cut
// every tile of every level in the worker, and every batch of any level re-index all of them.
//
// Labels are icons, not text: a MapLibre text layer needs glyphs from a `glyphs` URL (PBF font
// ranges), which would mean either a font server on the internet or shipping glyph files. Instead
// each label is drawn once on a canvas with the browser's own fonts when the map first asks for
// it (the missing-image resolver), and placed by an ordinary symbol layer, so labels keep MapLibre's
// collision handling, work offline and show any script the system fonts cover.

import { isTiled, tileSource, tileSourceSpec, tiledLayer } from "./tiles.mjs";

const EMPTY = { type: "FeatureCollection", features: [] };
export const LABEL_PREFIX = "label:";
const LEVEL = ["to-number", ["get", "level"]];
const polygon = ["==", ["geometry-type"], "Polygon"];
const line = ["==", ["geometry-type"], "LineString"];
const point = ["==", ["geometry-type"], "Point"];
const layerIs = (...names) => ["in", ["downcase", ["coalesce", ["get", "layer"], ""]], ["literal", names]];

export const floorSource = (level) => `floor@${level}`;
export const roomsSource = (level) => `rooms@${level}`;
/** The id of one of a level's layers (`floor-room`, `room-label`, ...). */
export const levelLayer = (kind, level) => `${kind}@${level}`;

export function baseStyle() {
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
  };
}

// A level's floor plan, drawn below the route.
const FLOOR_LAYERS = [
  {
    kind: "floor-area",
    type: "fill",
    filter: ["all", polygon, ["!", layerIs("room", "wall", "walls")]],
    paint: {
      "fill-color": ["match", ["downcase", ["coalesce", ["get", "layer"], ""]], "corridor", "#ffffff", "#e2e8f0"],
    },
  },
  {
    kind: "floor-corridor",
    type: "line",
    filter: ["all", line, layerIs("corridor", "corridors", "footway")],
    layout: { "line-cap": "round", "line-join": "round" },
    paint: { "line-color": "#ffffff", "line-width": ["interpolate", ["exponential", 2], ["zoom"], 16, 1, 22, 140] },
  },
  {
    kind: "floor-room",
    type: "fill",
    filter: ["all", polygon, layerIs("room")],
    paint: { "fill-color": "#fdf6e3" },
  },
  {
    kind: "floor-room-outline",
    type: "line",
    filter: ["all", polygon, layerIs("room")],
    paint: { "line-color": "#a8977a", "line-width": 1 },
  },
  {
    kind: "floor-wall",
    type: "line",
    filter: [
      "any",
      layerIs("wall", "walls"),
      ["all", line, ["!", layerIs("corridor", "corridors", "footway", "door", "doors")]],
    ],
    paint: { "line-color": "#475569", "line-width": ["interpolate", ["linear"], ["zoom"], 16, 1, 21, 4] },
  },
  {
    kind: "floor-door",
    type: "circle",
    filter: ["all", point, layerIs("door", "doors", "entrance")],
    paint: {
      "circle-color": "#16a34a",
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 17, 1.5, 21, 5],
      "circle-stroke-color": "#ffffff",
      "circle-stroke-width": 1,
    },
  },
  {
    kind: "floor-door-line",
    type: "line",
    filter: ["all", line, layerIs("door", "doors")],
    paint: { "line-color": "#16a34a", "line-width": 3 },
  },
];

// A level's rooms, drawn above the route.
const ROOM_LAYERS = [
  {
    kind: "room-point",
    type: "circle",
    paint: { "circle-color": "#a8977a", "circle-radius": ["interpolate", ["linear"], ["zoom"], 16, 1, 20, 3] },
  },
  {
    kind: "room-label",
    type: "symbol",
    minzoom: 18,
    layout: {
      "icon-image": ["concat", LABEL_PREFIX, ["get", "name"]],
      "icon-anchor": "top",
      "icon-offset": [0, 4],
      "icon-padding": 1,
      "symbol-sort-key": ["id"],
    },
  },
];

export const FLOOR_KINDS = FLOOR_LAYERS.map((layer) => layer.kind);
export const ROOM_KINDS = ROOM_LAYERS.map((layer) => layer.kind);

/** The route's source and layers, the selected room's, and the label images. */
export function addLayers(map) {
  map.addSource("route", { type: "geojson", data: EMPTY });
  map.addSource("selected", { type: "geojson", data: EMPTY });
  map.addSource("closed", { type: "geojson", data: EMPTY });
  const layers = [
    {
      id: "route-other",
      type: "line",
      source: "route",
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": "#2563eb", "line-opacity": 0.3, "line-width": 3, "line-dasharray": [1, 2] },
    },
    // What is closed now (live.mjs ClosedPlaces), on the level shown: areas over the floor plan and
    // under the route; rooms and connectors as markers over the route.
    {
      id: "closed-area",
      type: "fill",
      source: "closed",
      filter: polygon, // and the level shown: setLevel
      paint: { "fill-color": "#dc2626", "fill-opacity": 0.18, "fill-outline-color": "#b91c1c" },
    },
    {
      id: "route-casing",
      type: "line",
      source: "route",
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": "#ffffff", "line-width": 9 },
    },
    {
      id: "route-current",
      type: "line",
      source: "route",
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": "#2563eb", "line-width": 5 },
    },
    {
      id: "closed-place",
      type: "circle",
      source: "closed",
      filter: point, // and the level shown: setLevel
      paint: { "circle-color": "#dc2626", "circle-radius": 8, "circle-stroke-color": "#ffffff", "circle-stroke-width": 3 },
    },
    {
      id: "room-selected",
      type: "circle",
      source: "selected",
      paint: { "circle-color": "#f59e0b", "circle-radius": 9, "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 },
    },
  ];
  for (const layer of layers) map.addLayer(layer);
  map.setMissingStyleImageResolver((id) => {
    if (id.startsWith(LABEL_PREFIX)) addLabelImage(map, id);
  });
}

const levelsAdded = new Set();

/** A level's sources and layers (hidden until setLevel shows them); once per level. A tiled level
 * (tiles.mjs) has the same layers, read from its tiles. */
export function addLevel(map, level, bbox = null) {
  if (levelsAdded.has(level)) return;
  levelsAdded.add(level);
  if (isTiled(level)) {
    map.addSource(tileSource(level), tileSourceSpec(level, bbox));
    for (const { kind, ...layer } of FLOOR_LAYERS) {
      const spec = tiledLayer(layer, levelLayer(kind, level), level, "floor");
      map.addLayer({ ...spec, layout: { ...layer.layout, visibility: "none" } }, "route-other");
    }
    for (const { kind, ...layer } of ROOM_LAYERS) {
      const spec = tiledLayer(layer, levelLayer(kind, level), level, "rooms");
      map.addLayer({ ...spec, layout: { ...layer.layout, visibility: "none" } }, "room-selected");
    }
    return;
  }
  // Ids of features given to updateData must be stable: the API's feature ids are.
  map.addSource(floorSource(level), { type: "geojson", data: EMPTY, buffer: 16, tolerance: 0.2 });
  map.addSource(roomsSource(level), { type: "geojson", data: EMPTY });
  for (const { kind, ...layer } of FLOOR_LAYERS) {
    const spec = { ...layer, id: levelLayer(kind, level), source: floorSource(level) };
    map.addLayer({ ...spec, layout: { ...layer.layout, visibility: "none" } }, "route-other");
  }
  for (const { kind, ...layer } of ROOM_LAYERS) {
    const spec = { ...layer, id: levelLayer(kind, level), source: roomsSource(level) };
    map.addLayer({ ...spec, layout: { ...layer.layout, visibility: "none" } }, "room-selected");
  }
}

/** Show one level: its floor plan and rooms, the route prominent on it and faint elsewhere. */
export function setLevel(map, level) {
  addLevel(map, level);
  for (const other of levelsAdded) {
    const visibility = other === level ? "visible" : "none";
    for (const kind of [...FLOOR_KINDS, ...ROOM_KINDS]) {
      map.setLayoutProperty(levelLayer(kind, other), "visibility", visibility);
    }
  }
  // A leg that changes level (stairs up to 1) belongs to both of its levels.
  const onLevel = ["==", LEVEL, level];
  const legOnLevel = ["any", onLevel, ["==", ["to-number", ["coalesce", ["get", "to_level"], ["get", "level"]]], level]];
  map.setFilter("route-current", legOnLevel);
  map.setFilter("route-casing", legOnLevel);
  map.setFilter("route-other", ["!", legOnLevel]);
  map.setFilter("closed-area", ["all", polygon, onLevel]);
  map.setFilter("closed-place", ["all", point, onLevel]);
}

/** What is closed now (a FeatureCollection from live.mjs ClosedPlaces). */
export function setClosed(map, collection) {
  map.getSource("closed")?.setData(collection);
}

const LABEL_FONT = "600 12px system-ui, 'DejaVu Sans', sans-serif";

function addLabelImage(map, id) {
  if (map.hasImage(id)) return;
  const text = id.slice(LABEL_PREFIX.length);
  const ratio = Math.max(1, Math.round(window.devicePixelRatio || 1));
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d");
  context.font = LABEL_FONT;
  const width = Math.ceil(context.measureText(text).width) + 6;
  const height = 16;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  context.scale(ratio, ratio);
  context.font = LABEL_FONT;
  context.textBaseline = "middle";
  context.lineJoin = "round";
  context.lineWidth = 3;
  context.strokeStyle = "rgba(255,255,255,0.95)";
  context.strokeText(text, 3, height / 2);
  context.fillStyle = "#1e293b";
  context.fillText(text, 3, height / 2);
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  map.addImage(id, { width: canvas.width, height: canvas.height, data: image.data }, { pixelRatio: ratio });
}
