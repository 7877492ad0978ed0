// A route from `/api/route/` on the map and in the panel: legs (drawn by the route layers),
// markers at the start, the end and every change of level, distance, duration, instructions.

import { besidePanel, formatDistance, formatDuration, t } from "./i18n.mjs";
import { maneuverIcon } from "./icons.mjs";
import { Marker } from "./vendor/maplibre-gl.mjs";

const EMPTY = { type: "FeatureCollection", features: [] };

/** A camera move's duration: none for people who asked their system for less motion. */
export function cameraDuration(ms) {
  return matchMedia("(prefers-reduced-motion: reduce)").matches ? 0 : ms;
}

// A marker's title where the route leaves a level and where it arrives on the next, by connector.
// Whole sentences per kind: languages inflect the kind differently in each.
const LEAVING = {
  stairs: (level) => t("Take the stairs to level {level}", { level }),
  escalator: (level) => t("Take the escalator to level {level}", { level }),
  elevator: (level) => t("Take the elevator to level {level}", { level }),
  ramp: (level) => t("Take the ramp to level {level}", { level }),
};
const ARRIVING = {
  stairs: (level) => t("Arriving by stairs from level {level}", { level }),
  escalator: (level) => t("Arriving by escalator from level {level}", { level }),
  elevator: (level) => t("Arriving by elevator from level {level}", { level }),
  ramp: (level) => t("Arriving by ramp from level {level}", { level }),
};

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
      const start = route.from.name ? t("Start: {name}", { name: route.from.name }) : t("Start");
      const end = route.to.name ? t("Destination: {name}", { name: route.to.name }) : t("Destination");
      this.addMarker(first, route.from.level, "start", "A", start);
      this.addMarker(lastLeg[lastLeg.length - 1], route.to.level, "end", "B", end);
    }
    for (const leg of legs) {
      const { level, to_level: toLevel, kind } = leg.properties;
      if (toLevel == null || toLevel === level) continue;
      const coords = leg.geometry.coordinates;
      const leaving = (LEAVING[kind] ?? ((level) => t("Change to level {level}", { level })))(this.levelLabel(toLevel));
      const arriving = (ARRIVING[kind] ?? ((level) => t("Arriving from level {level}", { level })))(this.levelLabel(level));
      const up = Number(toLevel) > Number(level) ? "↑" : "↓";
      // Where the user leaves this level, and where they arrive on the next.
      this.addMarker(coords[0], level, "change", `${up} ${this.levelLabel(toLevel)}`, leaving, toLevel);
      this.addMarker(coords[coords.length - 1], toLevel, "change", `${up === "↑" ? "↓" : "↑"} ${this.levelLabel(level)}`, arriving, level);
    }
    this.ui.distance.textContent = formatDistance(route.distance_m);
    this.ui.distance.dataset.distanceM = String(route.distance_m);
    this.ui.duration.textContent = formatDuration(route.duration_s);
    for (const step of route.instructions) {
      const item = document.createElement("li");
      if (step.type) item.dataset.maneuver = step.type;
      const button = document.createElement("button");
      button.type = "button";
      const text = document.createElement("span");
      text.className = "step-text";
      text.textContent = step.text;
      const detail = document.createElement("small");
      const parts = [];
      // The server's own wording of the distance when it sends one (it knows the language's
      // rounding and units for directions), else the number as the page's language writes it.
      if (step.distance_text) parts.push(step.distance_text);
      else if (step.distance_m > 0) parts.push(formatDistance(step.distance_m));
      if (step.level != null) parts.push(t("level {level}", { level: step.level_name ?? this.levelLabel(step.level) }));
      detail.textContent = parts.join(" · ");
      const words = document.createElement("span");
      words.className = "step-words";
      words.append(text, detail);
      button.append(maneuverIcon(step), words);
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
    element.setAttribute("aria-label", title);
    element.setAttribute("role", "img");
    if (goesTo != null) {
      element.setAttribute("role", "button");
      element.tabIndex = 0;
      element.addEventListener("click", (event) => {
        event.stopPropagation();
        this.showLevel(goesTo);
      });
      element.addEventListener("keydown", (event) => {
        if (event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
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
      { padding: besidePanel(60, 60, 380, 80), maxZoom: 19.5, duration: cameraDuration(400) }
    );
  }
}
