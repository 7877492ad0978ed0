// One small icon per maneuver of `route.instructions` (API.md "Directions"), drawn here as inline
// SVG: the page's CSP loads images only from 'self', data: and blob:, and a few paths need no
// files. Icons are decorative (aria-hidden): the step's text says the same in words.
//
// Turn arrows are never mirrored for right-to-left languages: a left turn is a left turn whatever
// the direction of the script; only the page's layout mirrors.

const SVG = "http://www.w3.org/2000/svg";

// Arrows turning right (or straight on); a left turn is the right turn reflected (see `turn`).
const ARROWS = {
  straight: ["M12 20V4", "M6 10l6-6 6 6"],
  slight_right: ["M9 21v-7l7-7", "M10 7h6v6"],
  right: ["M6 21v-8a4 4 0 0 1 4-4h10", "M16 5l4 4-4 4"],
  sharp_right: ["M7 21V5l10 10", "M11 15h6v-6"],
  uturn: ["M16 21V10a4 4 0 0 0-8 0v9", "M4 15l4 4 4-4"],
};

// The way a level change goes (connector.kind).
const CONNECTORS = {
  stairs: ["M3 20h5v-5h5v-5h5V5h3"],
  escalator: ["M2 19h5L17 7h5", "M5 22l4-4", "M12 3a1.5 1.5 0 1 0 0.01 0"],
  elevator: ["M5 3h14v18H5z", "M9 10l3-3 3 3", "M9 14l3 3 3-3"],
  ramp: ["M3 19h18L3 11z"],
  other: ["M8 20V4", "M4 8l4-4 4 4", "M16 4v16", "M12 16l4 4 4-4"],
};

const SHAPES = {
  depart: ["M12 15V4", "M7 9l5-5 5 5", "M12 15a3 3 0 1 0 0.01 0"],
  arrive: ["M12 21s-6-5.5-6-11a6 6 0 0 1 12 0c0 5.5-6 11-6 11z", "M12 8a2 2 0 1 0 0.01 0"],
  door: ["M6 21V3h11v18", "M3 21h17", "M14 12h0.01"],
  enter: ["M14 4h5v16h-5", "M3 12h11", "M10 8l4 4-4 4"],
  leave: ["M10 4H5v16h5", "M9 12h12", "M17 8l4 4-4 4"],
  building_enter: ["M13 21V7l4-3 4 3v14z", "M2 14h8", "M7 11l3 3-3 3"],
  building_exit: ["M3 21V7l4-3 4 3v14z", "M13 14h8", "M18 11l3 3-3 3"],
  step: ["M12 10a2 2 0 1 0 0.01 0"], // an older server's step, without a `type`
};

/** Which icon a step gets: a name for tests and styles, the SVG paths and whether to reflect them. */
export function iconOf(step) {
  const type = step.type;
  if (type === "turn" || type === "continue") {
    const asked = step.modifier ?? "straight";
    const modifier = ARROWS[asked.replace("left", "right")] ? asked : "straight";
    return { name: `${type}-${modifier}`, paths: ARROWS[modifier.replace("left", "right")], reflect: modifier.endsWith("left") };
  }
  if (type === "level_change") {
    const kind = CONNECTORS[step.connector?.kind] ? step.connector.kind : "other";
    return { name: `level_change-${kind}`, paths: CONNECTORS[kind], reflect: false };
  }
  if (SHAPES[type]) return { name: type, paths: SHAPES[type], reflect: false };
  return { name: "step", paths: SHAPES.step, reflect: false };
}

/** The step's icon as an <svg> element. */
export function maneuverIcon(step) {
  const { name, paths, reflect } = iconOf(step);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "step-icon");
  svg.dataset.icon = name;
  const group = document.createElementNS(SVG, "g");
  // The left turn: the right turn's arrow reflected about the icon's vertical axis (its meaning,
  // not the page's direction).
  if (reflect) group.setAttribute("transform", "matrix(-1 0 0 1 24 0)");
  for (const d of paths) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    group.append(path);
  }
  svg.append(group);
  return svg;
}
