// A route from `/api/route/` on the map and in the panel: legs (drawn by the route layers),
// markers at the start, the end and every change of level, distance, duration, instructions.

import { Marker } from "./vendor/maplibre-gl.mjs";

const EMPTY = { type: "FeatureCollection", features: [] };
const KIND_NAMES = { stairs: "stairs", escalator: "escalator", elevator: "elevator", ramp: "ramp" };

export function formatDistance(metres) {
  return metres >= 1000 ? `${(metres / 1000).toFixed(2)} km` : `${Math.round(metres)} m`;
}

export function formatDuration(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  return `${Math.round(seconds / 60)} min`;
}

export class RouteView {
  /**
   * @param map the MapLibre map
   * @param {object} ui { summary, distance, duration, instructions, message }
   * @param {(level) => void} showLevel switches the map to a level
   * @param {(level) => string} levelLabel a level's display name
   */
  constructor(map, ui, showLevel, levelLabel) {
    this.map = map;
    this.ui = ui;
    this.showLevel = showLevel;
    this.levelLabel = levelLabel;
    this.markers = []; // [{ marker, level }]
    this.body = null;
  }

  clear() {
    this.body = null;
    this.map.getSource("route").setData(EMPTY);
    for (const { marker } of this.markers) marker.remove();
    this.markers = [];
    this.ui.summary.hidden = true;
    this.ui.instructions.replaceChildren();
  }

  message(text) {
    this.ui.message.textContent = text || "";
    this.ui.message.hidden = !text;
  }

  draw(body) {
    this.clear();
    this.body = body;
    this.map.getSource("route").setData({ type: "FeatureCollection", features: body.features });
    const legs = body.features;
    const { route } = body;
    if (legs.length) {
      const first = legs[0].geometry.coordinates[0];
      const lastLeg = legs[legs.length - 1].geometry.coordinates;
      this.addMarker(first, route.from.level, "start", "A", `Start: ${route.from.name ?? "start"}`);
      this.addMarker(lastLeg[lastLeg.length - 1], route.to.level, "end", "B", `Destination: ${route.to.name ?? "end"}`);
    }
    for (const leg of legs) {
      const { level, to_level: toLevel, kind } = leg.properties;
      if (toLevel == null || toLevel === level) continue;
      const coords = leg.geometry.coordinates;
      const how = KIND_NAMES[kind] ?? kind;
      const up = Number(toLevel) > Number(level) ? "↑" : "↓";
      // Where the user leaves this level, and where they arrive on the next.
      this.addMarker(coords[0], level, "change", `${up} ${this.levelLabel(toLevel)}`, `Take the ${how} to level ${this.levelLabel(toLevel)}`, toLevel);
      this.addMarker(coords[coords.length - 1], toLevel, "change", `${up === "↑" ? "↓" : "↑"} ${this.levelLabel(level)}`, `Arriving by ${how} from level ${this.levelLabel(level)}`, level);
    }
    this.ui.distance.textContent = formatDistance(route.distance_m);
    this.ui.distance.dataset.distanceM = String(route.distance_m);
    this.ui.duration.textContent = formatDuration(route.duration_s);
    for (const step of route.instructions) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      const text = document.createElement("span");
      text.textContent = step.text;
      const detail = document.createElement("small");
      const parts = [];
      if (step.distance_m > 0) parts.push(formatDistance(step.distance_m));
      if (step.level != null) parts.push(`level ${this.levelLabel(step.level)}`);
      detail.textContent = parts.join(" · ");
      button.append(text, detail);
      button.dataset.level = String(step.level);
      button.addEventListener("click", () => {
        for (const other of this.ui.instructions.querySelectorAll("button")) other.classList.remove("selected");
        button.classList.add("selected");
        if (step.level != null) this.showLevel(step.level);
        this.fitLevel(step.level);
      });
      item.append(button);
      this.ui.instructions.append(item);
    }
    this.ui.summary.hidden = false;
  }

  addMarker(lngLat, level, kind, label, title, goesTo = null) {
    const element = document.createElement("div");
    element.className = `route-marker ${kind}`;
    element.textContent = label;
    element.title = title;
    if (goesTo != null) {
      element.setAttribute("role", "button");
      element.addEventListener("click", (event) => {
        event.stopPropagation();
        this.showLevel(goesTo);
      });
    }
    const marker = new Marker({ element }).setLngLat(lngLat).addTo(this.map);
    this.markers.push({ marker, level: Number(level) });
  }

  /** Markers of the shown level stand out; the others are faint (and level changes hidden). */
  setLevel(level) {
    for (const { marker, level: own } of this.markers) {
      const element = marker.getElement();
      const here = own === Number(level);
      element.classList.toggle("other-level", !here);
      element.hidden = !here && element.classList.contains("change");
      marker.setOpacity(here ? "1" : "0.4"); // the marker's own inline opacity wins over a class
    }
  }

  /** Fit the view to the route's part on `level` (the whole route when it has none). */
  fitLevel(level) {
    if (!this.body) return;
    const coords = [];
    for (const leg of this.body.features) {
      const { level: own, to_level: toLevel } = leg.properties;
      if (level == null || Number(own) === Number(level) || Number(toLevel) === Number(level)) {
        coords.push(...leg.geometry.coordinates);
      }
    }
    if (!coords.length) for (const leg of this.body.features) coords.push(...leg.geometry.coordinates);
    if (!coords.length) return;
    let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const [x, y] of coords) {
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
      maxX = Math.max(maxX, x);
      maxY = Math.max(maxY, y);
    }
    this.map.fitBounds(
      [
        [minX, minY],
        [maxX, maxY],
      ],
      { padding: { top: 60, bottom: 60, left: 380, right: 80 }, maxZoom: 19.5, duration: 400 }
    );
  }
}
