// The page's words. English is the source language: `t("English text")` answers the text of the
// current language from the `page` catalogue, served as JSON at /assets/messages/<tag>.json.
// `make messages` extracts every `t("...")` literal of these scripts (babel-page.cfg), so the
// first argument of `t` is always a string literal, never a variable.
//
// The server negotiates the first language (?lang=, then Accept-Language) and writes it into
// <html lang dir>: the page's CSP allows no inline script, so that attribute is how it reaches us.

// BCP 47 tag -> the language's own name (the switcher lists each language as its speakers write it).
export const LANGUAGES = {
  en: "English",
  de: "Deutsch",
  fr: "Français",
  es: "Español",
  it: "Italiano",
  nl: "Nederlands",
  pt: "Português",
  pl: "Polski",
  "zh-Hans": "简体中文",
  ja: "日本語",
  ar: "العربية",
};
const RIGHT_TO_LEFT = new Set(["ar"]);
const BY_TAG = new Map(Object.keys(LANGUAGES).map((tag) => [tag.toLowerCase(), tag]));
const BY_PRIMARY = new Map(Object.keys(LANGUAGES).map((tag) => [tag.split("-")[0].toLowerCase(), tag]));

// The words of index.html (data-i18n, data-i18n-placeholder, data-i18n-aria-label, data-i18n-title
// hold their msgids). Listed here only so that the extraction sees them; never called.
function htmlWords() {
  return [
    t("Indoor map"),
    t("Language"),
    t("Search a room"),
    t("Directions"),
    t("From: room"),
    t("From"),
    t("To: room"),
    t("To"),
    t("Step-free (accessible)"),
    t("Swap start and destination"),
    t("Swap"),
    t("Clear"),
    t("Levels"),
    t("Connection lost — reconnecting…"),
    t("Search and directions"),
    t("Share link"),
    t("Copy the link to this view"),
    t("Suggestions"),
    t("Nearest"),
    t("Steps"),
    t("Closed now"),
  ];
}

let words = {};
let current = "en";
// The language the page was served in: where a URL without a (known) ?lang= leads back to.
export const served = match(document.documentElement.lang) ?? "en";

/** The language we speak for a tag (exact, case-insensitive, then its primary subtag), like the server. */
export function match(value) {
  if (!value) return null;
  const tag = String(value).trim().replace(/_/g, "-").toLowerCase();
  return BY_TAG.get(tag) ?? BY_PRIMARY.get(tag.split("-")[0]) ?? null;
}

export function lang() {
  return current;
}

/** Map padding that keeps a view clear of the panel, on the side where the panel is (on a phone,
 * below: the panel is a sheet at the bottom). */
export function besidePanel(top, bottom, panel, other) {
  if (matchMedia("(max-width: 640px)").matches) {
    const sheet = document.getElementById("panel")?.offsetHeight ?? 0;
    return { top, bottom: bottom + sheet, left: 20, right: 70 };
  }
  const rtl = document.documentElement.dir === "rtl";
  return { top, bottom, left: rtl ? other : panel, right: rtl ? panel : other };
}

/** `text` in the current language, `{name}` placeholders filled from `values`. */
export function t(text, values) {
  const found = words[text] || text;
  if (!values) return found;
  return found.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Load a language's words and apply them to the document (lang, dir, the words of index.html). */
export async function setLanguage(tag) {
  tag = match(tag) ?? "en";
  let loaded = {};
  if (tag !== "en") {
    const response = await fetch(`/assets/messages/${encodeURIComponent(tag)}.json`);
    if (response.ok) {
      loaded = await response.json();
    } else {
      tag = "en"; // the words did not come: English (the msgids) rather than a mixture
    }
  }
  words = loaded;
  current = tag;
  const root = document.documentElement;
  root.lang = tag;
  root.dir = RIGHT_TO_LEFT.has(tag) ? "rtl" : "ltr";
  translateDocument();
  return tag;
}

// data-i18n-<attribute>="msgid" -> the attribute; data-i18n="msgid" -> the text.
const ATTRIBUTES = [
  ["placeholder", "i18nPlaceholder"],
  ["aria-label", "i18nAriaLabel"],
  ["title", "i18nTitle"],
];

function translateDocument() {
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const [attribute, key] of ATTRIBUTES) {
    for (const element of document.querySelectorAll(`[data-i18n-${attribute}]`)) {
      element.setAttribute(attribute, t(element.dataset[key]));
    }
  }
}

// -- numbers as the language writes them ----------------------------------------------------------

const formats = new Map();

function numberFormat(options) {
  const key = `${current}|${JSON.stringify(options)}`;
  if (!formats.has(key)) formats.set(key, new Intl.NumberFormat(current, options));
  return formats.get(key);
}

export function formatNumber(value) {
  return numberFormat({ maximumFractionDigits: 0 }).format(value);
}

/** 120 m, 1.25 km (German: 1,25 km; Arabic digits in Arabic). */
export function formatDistance(metres) {
  if (metres >= 1000) {
    return numberFormat({ style: "unit", unit: "kilometer", maximumFractionDigits: 2 }).format(metres / 1000);
  }
  return numberFormat({ style: "unit", unit: "meter", maximumFractionDigits: 0 }).format(metres);
}

export function formatDuration(seconds) {
  if (seconds < 60) return numberFormat({ style: "unit", unit: "second", maximumFractionDigits: 0 }).format(seconds);
  return numberFormat({ style: "unit", unit: "minute", maximumFractionDigits: 0 }).format(seconds / 60);
}
