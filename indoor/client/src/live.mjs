// The building as it changes: the page listens to /api/events/ (API.md "Events") and, when a
// closure, a reopening or a graph change may concern the route on screen, plans it again and says
// why ("Elevator A0 is closed until 18:00; route updated.").
//
// - Whether a new closure touches the route cannot be told from the event (it names rooms, the
//   route's legs carry no edge ids): the route is asked for again and the answer says (its
//   `route.closures`, or a 422's `error.closures`). A closure that ends or is removed concerns
//   the route only if the route went around it. A graph change, or a `reload` (events missed),
//   always re-plans. A re-plan that changes nothing draws nothing.
// - The re-plan waits REPLAN_AFTER_MS after the event: a worker trusts the versions it read for
//   ROUTE_VERSION_MAX_AGE_S (0.5 s), so a route asked for sooner could be the one from before the
//   change. A random spread on top keeps a thousand open maps from asking in the same instant.
// - A dropped connection is resumed by the browser (Last-Event-ID). If the browser gives up (a
//   non-200, e.g. 503 while the app restarts), the stream is reopened here from the last event id
//   (`?lastEventId=`), after a pause that grows, as stream.mjs does for features.

import { lang, t } from "./i18n.mjs";

const EVENTS_URL = "/api/events/";
const REPLAN_AFTER_MS = 600;
const REPLAN_SPREAD_MS = 400;
const REPLAN_RETRY_MS = 3000;
const REPLAN_RETRIES = 5;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

/** The change events: `onChange(data)` for each `change`, `onReload()` when events were missed. */
export class ChangeEvents {
  constructor(handlers, url = EVENTS_URL) {
    this.url = url;
    this.handlers = handlers;
    this.lastEventId = null;
    this.retryMs = RETRY_MIN_MS;
    this.source = null;
    this.timer = null;
  }

  start() {
    this.open(this.url);
    return this;
  }

  open(url) {
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => {
      this.retryMs = RETRY_MIN_MS;
      this.handlers.onOpen?.();
    });
    source.addEventListener("change", (event) => {
      if (event.lastEventId) this.lastEventId = event.lastEventId;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return; // not ours to understand: the next one may be
      }
      this.handlers.onChange(data);
    });
    source.addEventListener("reload", () => this.handlers.onReload());
    source.addEventListener("error", () => {
      // CONNECTING: the browser retries by itself, with Last-Event-ID. CLOSED: it gave up.
      if (source === this.source && source.readyState === EventSource.CLOSED) this.scheduleReopen();
    });
  }

  scheduleReopen() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const resume = this.lastEventId ? `${this.url}?lastEventId=${encodeURIComponent(this.lastEventId)}` : this.url;
      this.open(resume);
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}

// -- words --------------------------------------------------------------------------------------

/** How a closure is named: its label from the data ("Elevator A0"), else its number. */
function closureName(closure) {
  return closure.label || t("Closure {id}", { id: closure.id });
}

/** 18:00 today; a date and time on another day. */
function closureUntil(closure) {
  if (!closure.ends_at) return null;
  const until = new Date(closure.ends_at);
  if (Number.isNaN(until.getTime())) return null;
  const today = new Date().toDateString() === until.toDateString();
  const options = today ? { hour: "2-digit", minute: "2-digit" } : { dateStyle: "medium", timeStyle: "short" };
  return new Intl.DateTimeFormat(lang(), options).format(until);
}

function closedUpdated(closure) {
  const until = closureUntil(closure);
  const what = closureName(closure);
  return until
    ? t("{what} is closed until {time}; route updated.", { what, time: until })
    : t("{what} is closed; route updated.", { what });
}

function aroundText(closure) {
  const until = closureUntil(closure);
  const what = closureName(closure);
  return until
    ? t("{what} is closed until {time}: this route goes around it.", { what, time: until })
    : t("{what} is closed: this route goes around it.", { what });
}

/** A 422 that closures caused, in the page's words (null: not one). */
export function closedRouteMessage(status, body, accessible) {
  const closures = status === 422 ? body?.error?.closures : null;
  if (!Array.isArray(closures) || !closures.length) return null;
  const what = closures.map(closureName).join(", ");
  const until = closures.length === 1 ? closureUntil(closures[0]) : null;
  if (accessible) {
    return until
      ? t('No step-free route between these places: {what} is closed until {time}. Turn off "Step-free" to allow stairs and escalators.', { what, time: until })
      : t('No step-free route between these places: {what} is closed. Turn off "Step-free" to allow stairs and escalators.', { what });
  }
  return until
    ? t("No route between these places: {what} is closed until {time}.", { what, time: until })
    : t("No route between these places: {what} is closed.", { what });
}

/** What a route that went around closures says of them, when it is first shown ("" if none). */
export function aroundNotice(body) {
  const closures = body?.route?.closures;
  return Array.isArray(closures) ? closures.map(aroundText).join(" ") : "";
}

/** One line of the "Closed now" list: "Elevator A0 is closed until 18:00 (maintenance)". */
export function closedText(closure) {
  const until = closureUntil(closure);
  const what = closureName(closure);
  const text = until ? t("{what} is closed until {time}", { what, time: until }) : t("{what} is closed", { what });
  return closure.reason ? `${text} (${closure.reason})` : text;
}

// -- what is closed now ---------------------------------------------------------------------------

const CLOSURES_URL = "/api/closures/?active=true";

/**
 * What is closed now, for the map and the panel: the active closures, each room placed where
 * /api/rooms/<id> puts it (read once per room), each area on each of its levels. Read again on
 * every closure event (opened, ended, removed: the watcher writes one when a start or an end
 * passes) and after a reload. `draw(collection, closures)` gets a FeatureCollection (properties:
 * level, text) and the closures.
 */
export class ClosedPlaces {
  constructor(draw) {
    this.draw = draw;
    this.rooms = new Map(); // id -> Feature, or null for a room that is gone
    this.reading = null;
    this.again = false;
  }

  /** Read again; one read at a time, and one more after it if asked meanwhile. */
  refresh() {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = this.read().finally(() => {
      this.reading = null;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
    return this.reading;
  }

  async read() {
    const body = await getJson(CLOSURES_URL);
    if (!body || !Array.isArray(body.closures)) return; // the next event or reload reads again
    const closures = body.closures.filter((c) => c.active);
    const features = [];
    for (const closure of closures) {
      const text = closedText(closure);
      for (const id of closure.rooms || []) {
        const room = await this.room(id);
        if (room?.geometry) features.push({ type: "Feature", geometry: room.geometry, properties: { level: room.properties?.level, text, closure: closure.id } });
      }
      if (closure.area) {
        for (const level of closure.levels || []) features.push({ type: "Feature", geometry: closure.area, properties: { level, text, closure: closure.id } });
      }
    }
    this.draw({ type: "FeatureCollection", features }, closures);
  }

  async room(id) {
    if (!this.rooms.has(id)) {
      const found = await getJson(`/api/rooms/${encodeURIComponent(id)}`);
      if (found === undefined) return null; // lost: asked again next time
      this.rooms.set(id, found);
    }
    return this.rooms.get(id);
  }
}

/** A JSON body; null for a 4xx (nothing there), undefined when the request failed or the server is busy. */
async function getJson(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (response.ok) return await response.json();
    return response.status < 500 ? null : undefined;
  } catch {
    return undefined;
  }
}

// -- re-planning --------------------------------------------------------------------------------

const listed = (answer) => (answer?.status === 200 ? answer.body?.route?.closures : answer?.body?.error?.closures) || [];

/** The same route (or the same refusal) as far as someone following it can tell. */
function sameAnswer(a, b) {
  if (!a || !b || a.status !== b.status) return false;
  if (a.status !== 200) return JSON.stringify(listed(a).map((c) => c.id)) === JSON.stringify(listed(b).map((c) => c.id));
  const geometry = (answer) => JSON.stringify(answer.body.features.map((f) => f.geometry.coordinates));
  return a.body.route.distance_m === b.body.route.distance_m && geometry(a) === geometry(b);
}

export class LiveRoute {
  /**
   * @param {object} hooks shown() -> the answer on screen ({status, body, profile}) or null;
   *   fetch() -> a fresh answer for the same route ({status, body}) or null (superseded, lost);
   *   present(answer, notice) draws it and says `notice` (or says why there is no route);
   *   closed: a ClosedPlaces, read again on closure events and reloads (optional);
   *   dataChanged(kind, version): the rooms or the floor plan changed (or events were missed)
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.causes = [];
    this.timer = null;
    this.retries = 0;
    // Read by the tests and the benchmark.
    this.stats = { connected: false, events: 0, lastEventAt: null, replans: 0, lastReplanAt: null, notices: 0, lastNotice: "", lastNoticeAt: null, lastShownAt: null };
  }

  start() {
    this.events = new ChangeEvents({
      onOpen: () => {
        this.stats.connected = true;
      },
      onChange: (data) => this.onChange(data),
      onReload: () => {
        this.hooks.closed?.refresh();
        this.hooks.dataChanged?.("rooms", `reload-${Date.now()}`);
        this.hooks.dataChanged?.("floor", `reload-${Date.now()}`);
        this.consider({ kind: "reload" });
      },
    }).start();
    return this;
  }

  onChange(data) {
    this.stats.events += 1;
    this.stats.lastEventAt = Date.now();
    if (data.kind === "closure") this.hooks.closed?.refresh();
    if (data.kind === "rooms" || data.kind === "floor") this.hooks.dataChanged?.(data.kind, data.version ?? data.id);
    if (data.kind === "closure" || data.kind === "graph") this.consider(data);
  }

  /** Re-plan soon if the change may concern the route on screen. */
  consider(change) {
    const shown = this.hooks.shown();
    if (!shown || !this.concerns(change, shown)) return;
    this.causes.push(change);
    if (this.timer) return; // one re-plan for the changes that arrive meanwhile
    this.timer = setTimeout(() => this.replan(), REPLAN_AFTER_MS + Math.random() * REPLAN_SPREAD_MS);
  }

  concerns(change, shown) {
    if (change.kind !== "closure") return true; // the graph changed, or events were missed
    const closure = change.closure || {};
    if (Array.isArray(closure.profiles) && !closure.profiles.includes(shown.profile)) return false;
    if (change.action === "opened") return true; // only the route's answer can tell
    return listed(shown).some((c) => c.id === closure.id); // a reopening matters where it was gone around
  }

  async replan() {
    this.timer = null;
    const causes = this.causes;
    this.causes = [];
    const before = this.hooks.shown();
    if (!before) return;
    this.stats.replans += 1;
    this.stats.lastReplanAt = Date.now();
    const answer = await this.hooks.fetch();
    if (answer && (answer.status === 0 || answer.status >= 500)) {
      // Lost or busy: the route on screen stays, and is asked for again a little later.
      if (this.retries++ < REPLAN_RETRIES) {
        this.causes.unshift(...causes);
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.replan(), REPLAN_RETRY_MS);
      }
      return;
    }
    this.retries = 0;
    if (!answer || sameAnswer(before, answer)) return;
    const notice = answer.status === 200 ? this.why(causes, before, answer) : ""; // a 422 says why itself
    if (notice) {
      this.stats.notices += 1;
      this.stats.lastNotice = notice;
      this.stats.lastNoticeAt = Date.now();
    }
    this.hooks.present(answer, notice);
    this.stats.lastShownAt = Date.now();
  }

  /** Why the route changed, from the changes that made it re-plan. */
  why(causes, before, after) {
    const nowListed = new Set(listed(after).map((c) => c.id));
    const wasListed = new Set(listed(before).map((c) => c.id));
    const words = [];
    for (const change of causes) {
      const closure = change.closure;
      if (change.kind !== "closure" || !closure) continue;
      if (change.action === "opened" && nowListed.has(closure.id)) words.push(closedUpdated(closure));
      else if (change.action !== "opened" && wasListed.has(closure.id) && !nowListed.has(closure.id)) {
        words.push(t("{what} is open again; route updated.", { what: closureName(closure) }));
      }
    }
    if (!words.length) {
      // Not attributed to a closure: the latest closure opened, else the paths changed.
      const opened = causes.filter((c) => c.kind === "closure" && c.action === "opened").at(-1);
      words.push(opened ? closedUpdated(opened.closure) : t("The paths of the building have changed; route updated."));
    }
    return [...new Set(words)].join(" ");
  }
}
