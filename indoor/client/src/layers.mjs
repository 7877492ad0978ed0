// The map's style: no basemap, the floor plan by layer, room labels and the route.
//
// Labels are icons, not text: a MapLibre text layer needs glyphs from a `glyphs` URL (PBF font
// ranges), which would mean either a font server on the internet or shipping glyph files. Instead
// each label is drawn once on a canvas with the browser's own fonts when the map first asks for
// it (the missing-image resolver), and placed by an ordinary symbol layer, so labels keep MapLibre's
// collision handling, work offline and show any script the system fonts cover.

const EMPTY = { type: "FeatureCollection", features: [] };
export const LABEL_PREFIX = "label:";
const LEVEL = ["to-number", ["get", "level"]];
const polygon = ["==", ["geometry-type"], "Polygon"];
const line = ["==", ["geometry-type"], "LineString"];
const point = ["==", ["geometry-type"], "Point"];
const layerIs = (...names) => ["in", ["downcase", ["coalesce", ["get", "layer"], ""]], ["literal", names]];

export function baseStyle() {
  return {
    version: 8,
    sources: {},
    layers: [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }],
  };
}

/** Sources and layers; `level` filters are set by setLevel(). */
export function addLayers(map) {
  // Ids of features given to updateData must be stable: the API's feature ids are.
  map.addSource("floor", { type: "geojson", data: EMPTY, buffer: 16, tolerance: 0.2 });
  map.addSource("rooms", { type: "geojson", data: EMPTY });
  map.addSource("route", { type: "geojson", data: EMPTY });

  const layers = [
    {
      id: "floor-area",
      type: "fill",
      source: "floor",
      filter: ["all", polygon, ["!", layerIs("room", "wall", "walls")]],
      paint: {
        "fill-color": ["match", ["downcase", ["coalesce", ["get", "layer"], ""]], "corridor", "#ffffff", "#e2e8f0"],
      },
    },
    {
      id: "floor-corridor",
      type: "line",
      source: "floor",
      filter: ["all", line, layerIs("corridor", "corridors", "footway")],
      layout: { "line-cap": "round", "line-join": "round" },
      paint: {
        "line-color": "#ffffff",
        "line-width": ["interpolate", ["exponential", 2], ["zoom"], 16, 1, 22, 140],
      },
    },
    {
      id: "floor-room",
      type: "fill",
      source: "floor",
      filter: ["all", polygon, layerIs("room")],
      paint: { "fill-color": "#fdf6e3", "fill-outline-color": "#b8a98a" },
    },
    {
      id: "floor-room-outline",
      type: "line",
      source: "floor",
      filter: ["all", polygon, layerIs("room")],
      paint: { "line-color": "#a8977a", "line-width": 1 },
    },
    {
      id: "floor-wall",
      type: "line",
      source: "floor",
      filter: ["any", layerIs("wall", "walls"), ["all", line, ["!", layerIs("corridor", "corridors", "footway", "door", "doors")]]],
      layout: { "line-join": "miter" },
      paint: { "line-color": "#475569", "line-width": ["interpolate", ["linear"], ["zoom"], 16, 1, 21, 4] },
    },
    {
      id: "floor-door",
      type: "circle",
      source: "floor",
      filter: ["all", point, layerIs("door", "doors", "entrance")],
      paint: {
        "circle-color": "#16a34a",
        "circle-radius": ["interpolate", ["linear"], ["zoom"], 17, 1.5, 21, 5],
        "circle-stroke-color": "#ffffff",
        "circle-stroke-width": 1,
      },
    },
    {
      id: "floor-door-line",
      type: "line",
      source: "floor",
      filter: ["all", line, layerIs("door", "doors")],
      paint: { "line-color": "#16a34a", "line-width": 3 },
    },
    {
      id: "route-other",
      type: "line",
      source: "route",
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": "#2563eb", "line-opacity": 0.3, "line-width": 3, "line-dasharray": [1, 2] },
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
      id: "room-point",
      type: "circle",
      source: "rooms",
      paint: {
        "circle-color": "#a8977a",
        "circle-radius": ["interpolate", ["linear"], ["zoom"], 16, 1, 20, 3],
      },
    },
    {
      id: "room-selected",
      type: "circle",
      source: "rooms",
      filter: ["==", ["id"], -1],
      paint: { "circle-color": "#f59e0b", "circle-radius": 9, "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 },
    },
    {
      id: "room-label",
      type: "symbol",
      source: "rooms",
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
  for (const layer of layers) {
    map.addLayer(layer);
    if (layer.filter && FLOOR_LAYERS.includes(layer.id)) baseFilters.set(layer.id, layer.filter);
  }
  map.setMissingStyleImageResolver((id) => {
    if (id.startsWith(LABEL_PREFIX)) addLabelImage(map, id);
  });
}

const baseFilters = new Map(); // floor layer id -> its filter without the level

export const FLOOR_LAYERS = [
  "floor-area",
  "floor-corridor",
  "floor-room",
  "floor-room-outline",
  "floor-wall",
  "floor-door",
  "floor-door-line",
];

/** Show one level: the floor plan and rooms of `level`, the route prominent on it. */
export function setLevel(map, level) {
  const onLevel = ["==", LEVEL, level];
  for (const id of FLOOR_LAYERS) {
    const base = baseFilters.get(id);
    map.setFilter(id, base ? ["all", onLevel, base] : onLevel);
  }
  for (const id of ["room-point", "room-label"]) map.setFilter(id, onLevel);
  // A leg that changes level (stairs up to 1) belongs to both of its levels.
  const legOnLevel = ["any", onLevel, ["==", ["to-number", ["coalesce", ["get", "to_level"], ["get", "level"]]], level]];
  map.setFilter("route-current", legOnLevel);
  map.setFilter("route-casing", legOnLevel);
  map.setFilter("route-other", ["!", legOnLevel]);
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
