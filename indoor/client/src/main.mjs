// The reference map client: a building level by level, room search and routes, all from the API
// of the same origin. The view lives in the URL (`/?level=L`, `/?room=ID`,
// `/?from=A&to=B[&profile=accessible]`, each with `&lang=` once a language was chosen), so a link
// reproduces it and Back goes back.

import { Map as MapLibre, NavigationControl, Popup, prewarm, setWorkerCount } from "./vendor/maplibre-gl.mjs";
import {
  FLOOR_KINDS,
  addLayers,
  addLevel,
  baseStyle,
  floorSource,
  levelLayer,
  roomsSource,
  setClosed,
  setLevel,
} from "./layers.mjs";
import { RouteView, cameraDuration } from "./route.mjs";
import { RoomSearch, levelName } from "./search.mjs";
import { FeatureStream } from "./stream.mjs";
import {
  TILE_MIN_ZOOM,
  anyTiled,
  awaitTiles,
  chooseTiled,
  isTiled,
  roomFromTile,
  tileSource,
  tileSourceSpec,
  tiledRoomIn,
} from "./tiles.mjs";
import { ClosedPlaces, LiveRoute, aroundNotice, closedRouteMessage, closedText } from "./live.mjs";
import {
  LANGUAGES,
  besidePanel,
  formatDistance,
  formatDuration,
  formatNumber,
  lang,
  match,
  served,
  setLanguage,
  t,
} from "./i18n.mjs";

const $ = (selector) => document.querySelector(selector);

// What the page shows; `stats` is read by the end-to-end test and the benchmark.
const view = { level: null, room: null, from: null, to: null, profile: "walking", lang: null };
const stats = { rooms: 0, roomsEnded: false, floor: {}, floorEnded: {}, firstDrawnMs: {}, firstDrawnAt: {}, streamStartedAt: {}, floorEndedAt: {}, batches: 0, routes: 0, troubles: 0 };
window.indoor = { view, stats };

let map;
let levels = []; // from /api/levels/
const levelNames = new Map(); // level -> display name
const rooms = new Map(); // id -> room Feature, from the rooms stream
const roomsByName = new Map(); // "level|name" -> room Feature (a click inside a room's outline)
const floorStreams = new Map(); // level -> FeatureStream
let roomStream;
let routeView;
let popup;
let navigation;
let fittedOnce = false;

// -- drawing batches ----------------------------------------------------------------------------

// Back-pressure: a source gets its next batches only once its previous update is loaded (worker
// index updated, tiles cut). Batches that arrive meanwhile wait here and go together, so each
// update reaches the screen instead of being superseded by the next one before its tiles are
// drawn, and MapLibre never merges hundreds of waiting diffs. A source whose update is not loaded
// within UPDATE_WAIT_MS gets the next one anyway.
const UPDATE_WAIT_MS = 3000;
const pending = new Map(); // source id -> features not yet handed to the map
const updating = new Map(); // source id -> when its last update was handed over
let flushScheduled = false;
// Every feature received has been handed to the map.
window.indoor.settled = () => [...pending.values()].every((features) => !features.length);

function draw(sourceId, features) {
  if (!pending.has(sourceId)) pending.set(sourceId, []);
  pending.get(sourceId).push(...features);
  if (updating.has(sourceId)) scheduleFlush();
  else handOver(sourceId); // the source is idle: no need to wait for a frame
}

function handOver(sourceId) {
  const features = pending.get(sourceId);
  pending.set(sourceId, []);
  updating.set(sourceId, performance.now());
  map.getSource(sourceId).updateData({ add: features });
  stats.batches += 1;
}

function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  requestAnimationFrame(flush);
}

function flush() {
  flushScheduled = false;
  let waiting = false;
  for (const [sourceId, features] of pending) {
    if (!features.length) continue;
    if (performance.now() - (updating.get(sourceId) ?? -Infinity) < UPDATE_WAIT_MS) {
      waiting = true;
      continue;
    }
    handOver(sourceId);
  }
  if (waiting) setTimeout(scheduleFlush, 100); // the fallback, should no sourcedata event come
}

function onSourceData(event) {
  if (updating.has(event.sourceId) && map.isSourceLoaded(event.sourceId)) {
    updating.delete(event.sourceId);
    if (pending.get(event.sourceId)?.length) scheduleFlush();
  }
}

// -- progress and the connection banner ---------------------------------------------------------

const troubled = new Set();

function streamHandlers(name, onFeatures, onEnd) {
  return {
    onFeatures,
    onEnd,
    onTrouble: () => {
      stats.troubles += 1;
      troubled.add(name);
      $("#banner").hidden = false;
    },
    onRecovered: () => {
      troubled.delete(name);
      $("#banner").hidden = troubled.size === 0;
    },
  };
}

let progressScheduled = false;

/** The progress line, redrawn at most once per frame however many batches arrive. */
function showProgress() {
  if (progressScheduled) return;
  progressScheduled = true;
  requestAnimationFrame(() => {
    progressScheduled = false;
    drawProgress();
  });
}

function drawProgress() {
  const totalRooms = levels.reduce((sum, level) => sum + (level.rooms || 0), 0);
  // The rooms of tiled levels come with their tiles, never one by one.
  const tiledRooms = levels.reduce((sum, level) => sum + (isTiled(level.level) ? level.rooms || 0 : 0), 0);
  const roomCount = stats.rooms + tiledRooms;
  const floorCount = stats.floor[view.level] || 0;
  const floorDone = stats.floorEnded[view.level];
  const parts = [
    totalRooms
      ? t("Rooms {count} / {total}", { count: formatNumber(roomCount), total: formatNumber(totalRooms) })
      : t("Rooms {count}", { count: formatNumber(roomCount) }),
  ];
  if (view.level != null && !isTiled(view.level)) {
    parts.push(t("floor plan {count}", { count: formatNumber(floorCount) }) + (floorDone ? "" : "…"));
  }
  const done = (stats.roomsEnded || levels.every((level) => isTiled(level.level))) && floorDone;
  const element = $("#progress");
  element.querySelector(".text").textContent = parts.join(" · ");
  element.querySelector(".fill").style.width = `${totalRooms ? Math.min(100, (100 * roomCount) / totalRooms) : 0}%`;
  element.classList.toggle("done", Boolean(done));
}

// -- levels -------------------------------------------------------------------------------------

function levelLabel(level) {
  return levelName(levelNames, level);
}

function buildLevelSwitcher() {
  const nav = $("#levels");
  nav.replaceChildren();
  // Highest on top, like the buttons in a lift.
  for (const entry of [...levels].sort((a, b) => b.level - a.level)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = levelLabel(entry.level);
    button.dataset.level = String(entry.level);
    button.title = t("Level {level}: {count} rooms", { level: levelLabel(entry.level), count: formatNumber(entry.rooms) });
    const active = Number(entry.level) === view.level;
    button.classList.toggle("active", active);
    button.setAttribute("aria-pressed", String(active));
    button.addEventListener("click", () => navigate({ level: entry.level, room: null }));
    nav.append(button);
  }
}

function showLevel(level) {
  level = Number(level);
  view.level = level;
  setLevel(map, level);
  for (const button of document.querySelectorAll("#levels button")) {
    const active = Number(button.dataset.level) === level;
    button.classList.toggle("active", active);
    button.setAttribute("aria-pressed", String(active));
  }
  routeView.setLevel(level);
  if (!floorStreams.has(level)) (isTiled(level) ? followTiles : streamFloor)(level);
  showProgress();
}

function streamFloor(level) {
  const started = performance.now();
  stats.streamStartedAt[level] = started;
  stats.floor[level] = 0;
  const handlers = streamHandlers(
    `floor-${level}`,
    (features) => {
      stats.floor[level] += features.length;
      draw(floorSource(level), features);
      if (stats.firstDrawnMs[level] == null) awaitFirstDrawn(level, started);
      showProgress();
    },
    () => {
      stats.floorEnded[level] = true;
      stats.floorEndedAt[level] = performance.now();
      startRooms();
      showProgress();
    }
  );
  floorStreams.set(level, new FeatureStream(`/api/base-floor/?level=${encodeURIComponent(level)}`, handlers).start());
}

/** A tiled level shown for the first time: the same figures as a stream's, from its tiles. */
function followTiles(level) {
  const started = performance.now();
  floorStreams.set(level, null);
  stats.streamStartedAt[level] = started;
  stats.floor[level] = 0;
  awaitFirstDrawn(level, started);
  awaitTiles(map, level, () => {
    stats.floorEnded[level] = true;
    stats.floorEndedAt[level] = performance.now();
    startRooms();
    showProgress();
  });
}

// The first batch of a level counts as drawn once the map has rendered a feature of it. Probed in
// a few small boxes: a query of the whole viewport would copy every drawn feature (seconds, on a
// campus) and block the page it measures.
function awaitFirstDrawn(level, started) {
  if (stats.firstDrawnMs[level] !== undefined) return;
  stats.firstDrawnMs[level] = null; // waiting
  const check = () => {
    const { clientWidth: width, clientHeight: height } = map.getContainer();
    const layers = FLOOR_KINDS.map((kind) => levelLayer(kind, level));
    let drawn = false;
    for (let i = 1; i < 4 && !drawn; i++) {
      for (let j = 1; j < 4 && !drawn; j++) {
        const [x, y] = [(width * i) / 4, (height * j) / 4];
        const box = [
          [x - 20, y - 20],
          [x + 20, y + 20],
        ];
        drawn = map.queryRenderedFeatures(box, { layers }).length > 0;
      }
    }
    if (!drawn) return;
    map.off("render", check);
    stats.firstDrawnMs[level] = performance.now() - started;
    stats.firstDrawnAt[level] = performance.now();
    startRooms();
  };
  map.on("render", check);
}

function fitLevel(level) {
  const entry = levels.find((l) => Number(l.level) === Number(level)) || levels[0];
  if (!entry?.bbox) return;
  const [w, s, e, n] = entry.bbox;
  map.fitBounds(
    [
      [w, s],
      [e, n],
    ],
    { padding: besidePanel(40, 60, 360, 80), duration: 0, maxZoom: 20 }
  );
}

// -- rooms --------------------------------------------------------------------------------------

// Every room (labels, clicks) streams once the first floor plan is on screen or has all arrived,
// so that on a large campus the plan the user looks at is not queued behind the rooms of every
// level; at the latest after ROOMS_AFTER_MS.
const ROOMS_AFTER_MS = 5000;

function startRooms() {
  if (!anyTiled()) {
    if (!roomStream) streamRooms("/api/rooms/");
  } else if (view.level != null && !isTiled(view.level) && !roomStreams.has(view.level)) {
    // Some levels are tiled: the rooms of the others, a level at a time as they are shown.
    roomStreams.set(view.level, streamRooms(`/api/rooms/?level=${encodeURIComponent(view.level)}`));
  }
}

const roomStreams = new Map(); // level -> FeatureStream, when some levels are tiled

function streamRooms(url) {
  const handlers = streamHandlers(
    "rooms",
    (features) => {
      for (const [level, group] of indexRooms(features)) {
        if (isTiled(level)) continue; // drawn from its tiles
        addLevel(map, level);
        draw(roomsSource(level), group);
      }
      stats.rooms += features.length;
      showProgress();
    },
    () => {
      stats.roomsEnded = true;
      stats.roomsEndedAt = performance.now();
      showProgress();
    }
  );
  const stream = new FeatureStream(url, handlers).start();
  if (!anyTiled()) {
    roomStream = stream;
    window.indoor.roomStream = roomStream;
  }
  return stream;
}

// -- the rooms or the floor plan changed (an event, live.mjs) ---------------------------------------

// Levels already on the page are read again: a tiled level asks for tiles of the new version (the
// version in their URL, so no cached tile is reused); a streamed one is streamed again in full and
// swapped in at its end (what was drawn stays until then: no flicker, and rows deleted meanwhile go).
const refreshing = new Map(); // "kind@level" -> the stream reading it again

function refreshData(kind, version) {
  stats.refreshes = (stats.refreshes || 0) + 1;
  for (const level of floorStreams.keys()) {
    if (isTiled(level)) {
      const source = map.getSource(tileSource(level));
      const spec = tileSourceSpec(level);
      source?.setTiles(spec.tiles.map((url) => `${url}&v=${encodeURIComponent(version)}`));
    } else if (kind === "floor") {
      restream(`floor@${level}`, `/api/base-floor/?level=${encodeURIComponent(level)}`, (features) =>
        map.getSource(floorSource(level)).setData({ type: "FeatureCollection", features })
      );
    }
  }
  if (kind !== "rooms") return;
  const streamed = anyTiled() ? [...roomStreams.keys()].map((level) => [level, `/api/rooms/?level=${encodeURIComponent(level)}`]) : roomStream ? [[null, "/api/rooms/"]] : [];
  for (const [only, url] of streamed) {
    restream(`rooms@${only ?? "all"}`, url, (features) => {
      for (const [id, room] of rooms) if (only === null || Number(room.properties.level) === only) rooms.delete(id);
      roomsByName.clear();
      indexRooms(rooms.values());
      const byLevel = indexRooms(features);
      for (const level of only === null ? new Set([...byLevel.keys(), ...floorStreams.keys()]) : [only]) {
        if (isTiled(level)) continue;
        addLevel(map, level);
        map.getSource(roomsSource(level)).setData({ type: "FeatureCollection", features: byLevel.get(level) || [] });
      }
    });
  }
}

function restream(key, url, swap) {
  refreshing.get(key)?.close(); // a newer change supersedes a read still under way
  const collected = [];
  const stream = new FeatureStream(url, {
    onFeatures: (features) => collected.push(...features),
    onEnd: () => {
      refreshing.delete(key);
      swap(collected);
      stats.refreshed = (stats.refreshed || 0) + 1;
    },
  }).start();
  refreshing.set(key, stream);
}

/** A room's name as the page knows it now (the tests read it). */
window.indoor.roomName = (id) => rooms.get(Number(id))?.properties?.name ?? null;

/** Rooms into the page's indexes (by id, by level and name) -> the rooms grouped by level. */
function indexRooms(features) {
  const byLevel = new Map();
  for (const room of features) {
    rooms.set(room.id, room);
    roomsByName.set(`${Number(room.properties.level)}|${room.properties.name}`, room);
    const level = Number(room.properties.level);
    if (!byLevel.has(level)) byLevel.set(level, []);
    byLevel.get(level).push(room);
  }
  return byLevel;
}

async function getRoom(id) {
  if (!/^\d+$/.test(String(id))) return null; // a place, not a room (`lon,lat,level`)
  if (rooms.has(Number(id))) return rooms.get(Number(id));
  const response = await fetch(`/api/rooms/${encodeURIComponent(id)}`);
  return response.ok ? response.json() : null;
}

function roomAt(point) {
  const box = [
    [point.x - 6, point.y - 6],
    [point.x + 6, point.y + 6],
  ];
  const roomLayers = [levelLayer("room-label", view.level), levelLayer("room-point", view.level)];
  const hit = map.queryRenderedFeatures(box, { layers: roomLayers })[0];
  if (hit) return rooms.get(hit.id) ?? (isTiled(view.level) ? roomFromTile(hit) : null);
  // A click inside a room's outline: the room point of that name on this level.
  const outline = map.queryRenderedFeatures(point, { layers: [levelLayer("floor-room", view.level)] })[0];
  if (!outline?.properties.name) return null;
  if (isTiled(view.level)) return tiledRoomIn(map, outline, roomLayers);
  return roomsByName.get(`${view.level}|${outline.properties.name}`) ?? null;
}

/** What a route end is called in the panel: its room's name, else the place as given. */
async function placeName(place) {
  if (!place) return "";
  if (isCategory(place)) return t("Nearest: {category}", { category: categoryLabel(place.slice(CATEGORY.length)) });
  const room = await getRoom(place);
  return room ? room.properties.name : place;
}

function showRoomPopup(room) {
  popup?.remove();
  const content = document.createElement("div");
  content.className = "room-popup";
  const title = document.createElement("strong");
  title.textContent = room.properties.name;
  const where = document.createElement("small");
  const parts = [t("level {level}", { level: levelLabel(room.properties.level) })];
  if (room.properties.building) parts.unshift(t("Building {name}", { name: room.properties.building }));
  if (room.properties.category) parts.push(room.properties.category);
  where.textContent = parts.join(" · ");
  const from = document.createElement("button");
  from.type = "button";
  from.textContent = t("Directions from here");
  from.addEventListener("click", () => navigate({ from: String(room.id), room: null }));
  const to = document.createElement("button");
  to.type = "button";
  to.textContent = t("Directions to here");
  to.addEventListener("click", () => navigate({ to: String(room.id), room: null }));
  content.append(title, where, from, to);
  popup = new Popup({ offset: 10, closeButton: true, maxWidth: "240px" })
    .setLngLat(room.geometry.coordinates)
    .setDOMContent(content)
    .addTo(map);
  popup.getElement().querySelector(".maplibregl-popup-close-button")?.setAttribute("aria-label", t("Close popup"));
}

async function showRoom(id) {
  const room = await getRoom(id);
  if (!room) {
    routeMessage(t("Room {id} not found.", { id }));
    return;
  }
  if (view.level !== Number(room.properties.level)) showLevel(room.properties.level);
  map.getSource("selected").setData(room);
  map.flyTo({ center: room.geometry.coordinates, zoom: Math.max(map.getZoom(), 19.5), duration: cameraDuration(600) });
  showRoomPopup(room);
}

// -- routes -------------------------------------------------------------------------------------

let routeRequest = null;
let shownAnswer = null; // the route answer on screen ({status, body, profile}), for live.mjs

/** Ask for the route of the view -> {status, body}; null if a newer request superseded it. */
async function fetchRoute() {
  routeRequest?.abort();
  const request = new AbortController();
  routeRequest = request;
  // The steps' words come from the server, in the page's language.
  const params = new URLSearchParams({ from: view.from, to: view.to, profile: view.profile, lang: lang() });
  try {
    const response = await fetch(`/api/route/?${params}`, { signal: request.signal });
    const body = await response.json();
    return routeRequest === request ? { status: response.status, body } : null;
  } catch (error) {
    return error.name === "AbortError" || routeRequest !== request ? null : { status: 0, body: null };
  }
}

/** Fetch and draw the route of the view; show `level`, else the route's start level. */
async function showRoute(level) {
  routeView.message("");
  const answer = await fetchRoute();
  if (answer) presentRoute(answer, level);
}

/** Draw a route answer, or say why there is none. `notice`: why a shown route was planned again
 * (live.mjs); such a re-plan keeps the level and the camera the user has. */
function presentRoute(answer, level, notice = null) {
  const { status, body } = answer;
  shownAnswer = { ...answer, profile: view.profile, key: shownRoute };
  const replanned = notice !== null;
  routeNotice(replanned ? notice : status === 200 ? aroundNotice(body) : "");
  if (status === 0) {
    routeView.clear();
    routeMessage(t("The route could not be loaded: the connection was lost. Try again in a moment."));
    return;
  }
  if (status !== 200) {
    routeView.clear();
    routeMessage(routeError(status, body));
    return;
  }
  stats.routes += 1;
  routeView.message("");
  routeView.draw(body);
  const { route } = body;
  const summary = t("Route to {name}: {distance}, {duration}, {steps} steps.", {
    name: route.to.name ?? t("Destination"),
    distance: formatDistance(route.distance_m),
    duration: formatDuration(route.duration_s),
    steps: formatNumber(route.instructions.length),
  });
  announce(notice ? `${notice} ${summary}` : summary);
  if (isCategory(view.to) && route.to.name) toSearch.set(route.to.name);
  if (isCategory(view.from) && route.from.name) fromSearch.set(route.from.name);
  if (replanned) {
    routeView.setLevel(view.level); // the new markers, as on the level shown
    return;
  }
  showLevel(level ?? body.route.from.level);
  routeView.fitLevel(null); // the whole trip: levels lie over each other in plan
  fittedOnce = true;
}

/** The line that says why the route is what it is (closures it goes around, a re-plan). */
function routeNotice(text) {
  const element = $("#route-notice");
  element.textContent = text || "";
  element.hidden = !text;
}

/** A message in the panel that a screen reader also says. */
function routeMessage(text) {
  routeView.message(text);
  if (text) announce(text);
}

/** Say `text` through the live region (emptied first, so that the same words are said again). */
function announce(text) {
  const region = $("#announcer");
  region.textContent = "";
  requestAnimationFrame(() => {
    region.textContent = text;
  });
}

function routeError(status, body) {
  const closed = closedRouteMessage(status, body, view.profile === "accessible");
  if (closed) return closed;
  // The API's message says why (not connected, too far...); it is in English, as error messages are.
  const reason = body?.error?.message;
  if (status === 422) {
    if (view.profile === "accessible") {
      return reason
        ? t('No step-free route between these places ({reason}). Turn off "Step-free" to allow stairs and escalators.', { reason })
        : t('No step-free route between these places. Turn off "Step-free" to allow stairs and escalators.');
    }
    return reason ? t("No route between these places ({reason}).", { reason }) : t("No route between these places.");
  }
  if (status === 404) {
    return reason ? t("A room of this route does not exist ({reason}).", { reason }) : t("A room of this route does not exist.");
  }
  if (status === 400) {
    return reason ? t("This route cannot be asked for ({reason}).", { reason }) : t("This route cannot be asked for.");
  }
  if (status === 429) return t("Too many requests: try again in a moment.");
  return t("The route service is unavailable right now: try again in a moment.");
}

// -- nearest places, sharing, the bottom sheet --------------------------------------------------

const CATEGORY = "category:";
const isCategory = (place) => typeof place === "string" && place.toLowerCase().startsWith(CATEGORY);
// The categories worth a button, most useful first, with their words; others present follow by
// their room count, under their own name, up to NEAREST_BUTTONS in all.
const USEFUL_CATEGORIES = {
  toilets: () => t("Toilets"),
  elevator: () => t("Elevator"),
  entrance: () => t("Entrance"),
  information: () => t("Information"),
  cafe: () => t("Café"),
  restaurant: () => t("Restaurant"),
  shop: () => t("Shop"),
  service: () => t("Service"),
  lounge: () => t("Lounge"),
};
const NEAREST_BUTTONS = 6;
let categories = []; // from /api/categories/

function categoryLabel(name) {
  return USEFUL_CATEGORIES[name.toLowerCase()]?.() ?? name;
}

async function loadCategories() {
  try {
    const response = await fetch("/api/categories/");
    categories = response.ok ? (await response.json()).categories : [];
  } catch {
    categories = []; // no buttons: the page works without them
  }
}

function buildNearestButtons() {
  const present = new Set(categories.map((c) => c.name));
  const useful = Object.keys(USEFUL_CATEGORIES).filter((name) => present.has(name));
  const others = categories.map((c) => c.name).filter((name) => !(name in USEFUL_CATEGORIES));
  const chosen = [...useful, ...others].slice(0, NEAREST_BUTTONS);
  const container = $("#nearest .nearest-buttons");
  container.replaceChildren();
  for (const name of chosen) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.category = name;
    button.textContent = categoryLabel(name);
    button.addEventListener("click", () => {
      navigate({ to: `${CATEGORY}${name}`, room: null });
      if (!view.from) $("#from-search input").focus(); // the route needs its start
    });
    container.append(button);
  }
  $("#nearest").hidden = chosen.length === 0;
}

async function shareLink() {
  const url = location.href;
  try {
    await navigator.clipboard.writeText(url);
    announce(t("Link copied."));
  } catch {
    // No clipboard (a page served over plain http, or refused): the link to copy by hand.
    routeMessage(t("Copy this link: {url}", { url }));
  }
}

function toggleSheet() {
  const panel = $("#panel");
  const collapsed = panel.classList.toggle("collapsed");
  $("#sheet-toggle").setAttribute("aria-expanded", String(!collapsed));
}

// -- the view in the URL ------------------------------------------------------------------------

function viewFromUrl() {
  const params = new URLSearchParams(location.search);
  const level = params.get("level");
  return {
    level: level !== null && level !== "" && Number.isFinite(Number(level)) ? Number(level) : null,
    room: params.get("room"),
    from: params.get("from"),
    to: params.get("to"),
    profile: params.get("profile") === "accessible" ? "accessible" : "walking",
    lang: match(params.get("lang")), // an unknown language: the one the page was served in
  };
}

function urlFromView(next) {
  const params = new URLSearchParams();
  if (next.level != null) params.set("level", String(next.level));
  if (next.room) params.set("room", next.room);
  if (next.from) params.set("from", next.from);
  if (next.to) params.set("to", next.to);
  if (next.profile === "accessible") params.set("profile", "accessible");
  if (next.lang) params.set("lang", next.lang);
  const query = params.toString();
  return query ? `/?${query}` : "/";
}

/** A user action: a new entry in the history, then the view follows it. */
function navigate(changes) {
  const next = { ...viewFromUrl(), ...changes };
  if ("room" in changes && changes.room) next.level = null; // the room decides the level
  const url = urlFromView(next);
  if (url !== location.pathname + location.search) history.pushState(null, "", url);
  applyUrl();
}

let shownRoute = "";
let shownLanguage = null;

async function applyUrl() {
  const wanted = viewFromUrl();
  view.lang = wanted.lang;
  const language = wanted.lang ?? served;
  if (language !== shownLanguage) {
    shownLanguage = language;
    await setLanguage(language);
    languageChanged();
  }
  view.room = wanted.room;
  view.from = wanted.from;
  view.to = wanted.to;
  view.profile = wanted.profile;
  $("#accessible").checked = wanted.profile === "accessible";
  popup?.remove();
  map.getSource("selected").setData({ type: "FeatureCollection", features: [] });

  // The language is part of the route: its steps are worded by the server.
  const routeKey = wanted.from && wanted.to ? `${wanted.from}|${wanted.to}|${wanted.profile}|${lang()}` : "";
  fromSearch.set(await placeName(wanted.from));
  toSearch.set(await placeName(wanted.to));
  if (!routeKey) {
    shownRoute = "";
    shownAnswer = null;
    routeNotice("");
    routeView.clear();
    routeMessage(wanted.from || wanted.to ? t("Choose the other end of the route.") : "");
  }

  if (wanted.level != null) showLevel(wanted.level);
  if (routeKey && routeKey !== shownRoute) {
    shownRoute = routeKey;
    await showRoute(wanted.level);
  }
  if (wanted.room) {
    await showRoom(wanted.room);
  } else if (wanted.level == null) {
    // No level asked for: the route's start, else the ground floor.
    showLevel(routeKey && routeView.body ? routeView.body.route.from.level : defaultLevel());
  }
  if (!fittedOnce) {
    fitLevel(view.level);
    fittedOnce = true;
  }
}

/** Everything drawn in words that the document's data-i18n attributes do not cover. */
function languageChanged() {
  $("#language").value = lang();
  buildLevelSwitcher();
  buildNearestButtons();
  drawProgress();
  localiseMap();
  closedPlaces?.refresh(); // its list in the new words
}

let closedPlaces = null;

/** What is closed now: marked on the map (on the level shown) and listed in the panel. */
function showClosed(collection, closures) {
  setClosed(map, collection);
  const items = closures.map((closure) => {
    const item = document.createElement("li");
    item.textContent = closedText(closure);
    return item;
  });
  $("#closed-list").replaceChildren(...items);
  $("#closed").hidden = items.length === 0;
  window.indoor.closed = { closures: closures.map((c) => c.id), places: collection.features.length };
}

/** MapLibre's own words (its constructor sets them once): the canvas and the navigation buttons. */
function localiseMap() {
  // The controls sit in the corner opposite the panel, which changes sides with the direction.
  const corner = document.documentElement.dir === "rtl" ? "bottom-left" : "bottom-right";
  if (navigation.corner !== corner) {
    if (navigation.corner) map.removeControl(navigation.control);
    map.addControl(navigation.control, corner);
    navigation.corner = corner;
  }
  map.getCanvas().setAttribute("aria-label", t("Map"));
  map.getCanvas().setAttribute("aria-describedby", "route-instructions"); // the steps say what the route draws
  for (const [selector, text] of [
    [".maplibregl-ctrl-zoom-in", t("Zoom in")],
    [".maplibregl-ctrl-zoom-out", t("Zoom out")],
    [".maplibregl-ctrl-compass", t("Reset bearing to north")],
  ]) {
    const button = map.getContainer().querySelector(selector);
    button?.setAttribute("title", text);
    button?.setAttribute("aria-label", text);
  }
}

function buildLanguageSwitcher() {
  const select = $("#language");
  for (const [tag, name] of Object.entries(LANGUAGES)) {
    const option = new Option(name, tag);
    option.lang = tag; // read out in its own language
    select.append(option);
  }
  select.value = lang();
  select.addEventListener("change", () => navigate({ lang: select.value }));
}

function defaultLevel() {
  const ground = levels.find((l) => Number(l.level) === 0);
  return Number((ground || levels[0] || { level: 0 }).level);
}

// -- start --------------------------------------------------------------------------------------

let fromSearch;
let toSearch;

async function loadLevels() {
  const response = await fetch("/api/levels/");
  levels = response.ok ? (await response.json()).levels : [];
  for (const entry of levels) levelNames.set(Number(entry.level), entry.name ?? String(entry.level));
  window.indoor.tiled = [...chooseTiled(levels)];
}

async function start() {
  // The map (and its worker) start while the levels and the words load.
  const levelsLoaded = loadLevels();
  const categoriesLoaded = loadCategories();
  shownLanguage = viewFromUrl().lang ?? served;
  const wordsLoaded = setLanguage(shownLanguage);
  map = new MapLibre({
    container: "map",
    style: baseStyle(),
    center: [0, 0],
    zoom: 1,
    maxZoom: 23,
    renderWorldCopies: false,
    attributionControl: false,
  });
  window.indoor.map = map;
  navigation = { control: new NavigationControl({ showCompass: true }), corner: null };
  await Promise.all([map.once("load"), levelsLoaded, wordsLoaded, categoriesLoaded]);
  addLayers(map);
  for (const entry of levels) addLevel(map, Number(entry.level), entry.bbox);
  // Tiles exist from zoom 16: below it a tiled level would vanish (every fit and zoom stops there).
  if (anyTiled()) map.setMinZoom(TILE_MIN_ZOOM);
  map.on("sourcedata", onSourceData);
  window.indoor.layer = (kind) => levelLayer(kind, view.level);
  routeView = new RouteView(
    map,
    {
      summary: $("#route-summary"),
      distance: $("#route-distance"),
      duration: $("#route-duration"),
      instructions: $("#route-instructions"),
      message: $("#route-message"),
    },
    (level) => navigate({ level: Number(level), room: null }),
    levelLabel
  );
  buildLanguageSwitcher();
  languageChanged();

  new RoomSearch($("#room-search"), (room) => navigate({ room: String(room.id) }), () => levelNames);
  fromSearch = new RoomSearch($("#from-search"), (room) => navigate({ from: String(room.id) }), () => levelNames);
  toSearch = new RoomSearch($("#to-search"), (room) => navigate({ to: String(room.id) }), () => levelNames);
  $("#accessible").addEventListener("change", (event) =>
    navigate({ profile: event.target.checked ? "accessible" : "walking" })
  );
  $("#swap").addEventListener("click", () => navigate({ from: view.to, to: view.from }));
  $("#clear-route").addEventListener("click", () => navigate({ from: null, to: null }));
  $("#share").addEventListener("click", shareLink);
  $("#sheet-toggle").addEventListener("click", toggleSheet);
  map.on("click", (event) => {
    const closed = map.queryRenderedFeatures(event.point, { layers: ["closed-place", "closed-area"] })[0];
    if (closed) {
      new Popup({ closeButton: true }).setLngLat(event.lngLat).setText(closed.properties.text).addTo(map);
      return;
    }
    const room = roomAt(event.point);
    if (room) navigate({ room: String(room.id) });
  });
  map.on("mousemove", (event) => {
    map.getCanvas().style.cursor = roomAt(event.point) ? "pointer" : "";
  });
  window.addEventListener("popstate", () => applyUrl());

  setTimeout(startRooms, ROOMS_AFTER_MS);
  // Closures and graph changes re-plan the route on screen, and what is closed is shown (live.mjs).
  closedPlaces = new ClosedPlaces(showClosed);
  const live = new LiveRoute({
    shown: () => (shownRoute && shownAnswer?.key === shownRoute ? shownAnswer : null),
    fetch: fetchRoute,
    present: (answer, notice) => presentRoute(answer, view.level, notice),
    closed: closedPlaces,
    dataChanged: refreshData,
  }).start();
  closedPlaces.refresh();
  window.indoor.live = live.stats;
  await applyUrl();
  window.indoor.ready = true;
}

// Two workers (MapLibre takes half the cores, one on a 2-core laptop): a level's floor plan and its
// rooms are cut into tiles side by side. They start loading before the map is made.
setWorkerCount(Math.max(2, Math.floor((navigator.hardwareConcurrency || 2) / 2)));
prewarm();
start();
