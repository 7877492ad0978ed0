// A room search box: suggestions from `/api/rooms/?q=` as the user types, chosen with the mouse
// or the arrow keys and Enter.

import { t } from "./i18n.mjs";

const DEBOUNCE_MS = 150;
const SUGGESTIONS = 8;

export function levelName(levelNames, level) {
  return levelNames.get(Number(level)) ?? String(level);
}

export class RoomSearch {
  /**
   * @param {HTMLElement} root a `.search` element holding an input and a listbox
   * @param {(room) => void} onChoose called with the chosen room Feature
   * @param {() => Map} levelNames level -> display name, for the suggestions
   */
  constructor(root, onChoose, levelNames) {
    this.input = root.querySelector("input");
    this.list = root.querySelector("ul");
    this.onChoose = onChoose;
    this.levelNames = levelNames;
    this.rooms = [];
    this.active = -1;
    this.timer = null;
    this.request = null;
    this.input.addEventListener("input", () => this.typed());
    this.input.addEventListener("keydown", (event) => this.key(event));
    this.input.addEventListener("blur", () => setTimeout(() => this.hide(), 150));
    this.list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus
  }

  /** Show a chosen place's name without searching. */
  set(name) {
    this.input.value = name;
    this.hide();
  }

  typed() {
    clearTimeout(this.timer);
    const q = this.input.value.trim();
    if (!q) return this.hide();
    this.timer = setTimeout(() => this.suggest(q), DEBOUNCE_MS);
  }

  async suggest(q) {
    this.request?.abort();
    const request = new AbortController();
    this.request = request;
    let body;
    try {
      const params = new URLSearchParams({ q, limit: String(SUGGESTIONS) });
      const response = await fetch(`/api/rooms/?${params}`, { signal: request.signal });
      if (!response.ok) return this.hide();
      body = await response.json();
    } catch (error) {
      if (error.name !== "AbortError") this.hide();
      return;
    }
    if (this.request !== request) return;
    this.rooms = body.features;
    this.render();
  }

  render() {
    this.list.replaceChildren();
    this.active = -1;
    if (!this.rooms.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.setAttribute("role", "option");
      empty.setAttribute("aria-disabled", "true");
      empty.textContent = t("No room found");
      this.list.append(empty);
    }
    const names = this.levelNames();
    this.rooms.forEach((room, index) => {
      const item = document.createElement("li");
      item.setAttribute("role", "option");
      item.id = `${this.list.id}-${index}`;
      item.setAttribute("aria-selected", "false");
      const name = document.createElement("span");
      name.textContent = room.properties.name;
      const where = document.createElement("small");
      const building = room.properties.building ? `${room.properties.building} · ` : "";
      where.textContent = `${building}${t("level {level}", { level: levelName(names, room.properties.level) })}`;
      item.append(name, where);
      item.addEventListener("click", () => this.choose(index));
      this.list.append(item);
    });
    this.show(true);
  }

  /** The list and what the combobox tells a screen reader about it (open, the option on). */
  show(open) {
    this.list.hidden = !open;
    this.input.setAttribute("aria-expanded", String(open));
    if (!open || this.active < 0) this.input.removeAttribute("aria-activedescendant");
  }

  key(event) {
    if (this.list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!this.rooms.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.rooms.length) % this.rooms.length;
      [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === this.active)));
      const option = this.list.children[this.active];
      if (option?.id) {
        this.input.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({ block: "nearest" });
      }
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.choose(Math.max(this.active, 0));
    } else if (event.key === "Escape") {
      this.hide();
    }
  }

  choose(index) {
    const room = this.rooms[index];
    if (!room) return;
    this.set(room.properties.name);
    this.onChoose(room);
  }

  hide() {
    this.active = -1;
    this.show(false);
  }
}
