"""Languages: which one a request speaks, the compiled gettext catalogues, numbers as the locale
writes them.

Words are chosen last: routing returns maneuvers without any language; the blueprint renders
them (`http/instructions.py`) in the language chosen here, so one cached route serves every
language. The language is always passed explicitly (never read from a request global), so a
greenlet or a background job renders exactly what the request asked for.

Catalogues: `indoor/translations/<locale>/LC_MESSAGES/<domain>.po`, compiled to `.mo` by `make`
and the Docker build (`pybabel compile`, never committed). Domains: `messages` (directions),
`page` (the map page's own labels, served as JSON). README "Languages" says how to add one.
"""

from __future__ import annotations

import functools
from pathlib import Path

from babel import Locale, numbers
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAINS = ("messages", "page")
DEFAULT = "en"
# BCP 47 tags as answered in Content-Language and accepted in ?lang=; English is the source
# language (the msgids), every other one has a complete catalogue.
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "zh-Hans", "ja", "ar")
RIGHT_TO_LEFT = frozenset({"ar"})
# A primary subtag alone picks its language (Accept-Language: zh-CN -> zh-Hans, pt-BR -> pt).
_BY_PRIMARY = {tag.split("-")[0].lower(): tag for tag in LANGUAGES}
_BY_TAG = {tag.lower(): tag for tag in LANGUAGES}


class CatalogueError(RuntimeError):
    """A catalogue is missing or older than its source: the words would be stale."""


def locale_id(tag: str) -> str:
    """The catalogue folder and Babel locale of a tag: zh-Hans -> zh_Hans."""
    return tag.replace("-", "_")


def match(value: str | None) -> str | None:
    """The language we speak for one tag (exact, case-insensitive, then its primary subtag)."""
    if not value:
        return None
    value = value.strip().replace("_", "-").lower()
    if value in _BY_TAG:
        return _BY_TAG[value]
    return _BY_PRIMARY.get(value.split("-")[0])


def negotiate(lang: str | None, accept_languages) -> str:
    """?lang= first, then Accept-Language (highest quality first, each with its primary-subtag
    fallback), then English. `accept_languages`: werkzeug's LanguageAccept (value, quality) pairs."""
    found = match(lang)
    if found:
        return found
    for value, quality in accept_languages or ():
        if quality > 0 and value != "*":
            found = match(value)
            if found:
                return found
    return DEFAULT


def direction(tag: str) -> str:
    return "rtl" if tag in RIGHT_TO_LEFT else "ltr"


@functools.cache
def translations(tag: str, domain: str = "messages") -> NullTranslations:
    """The compiled catalogue (English: the msgids themselves)."""
    if tag == DEFAULT:
        return NullTranslations()
    found = Translations.load(str(TRANSLATIONS), [locale_id(tag)], domain)
    if not isinstance(found, Translations):  # Babel answers NullTranslations for a missing .mo
        raise CatalogueError(f"no compiled catalogue {domain!r} for {tag}: run `make translations`")
    return found


@functools.cache
def locale(tag: str) -> Locale:
    return Locale.parse(locale_id(tag))


def format_decimal(value: float, tag: str, decimals: int = 0) -> str:
    """1.5 in English, 1,5 in German; grouping as the locale writes it."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return numbers.format_decimal(value, format=pattern, locale=locale(tag))


@functools.cache
def _page_msgids() -> tuple[str, ...]:
    with open(TRANSLATIONS / "page.pot", "rb") as template:
        return tuple(str(m.id) for m in read_po(template) if m.id and isinstance(m.id, str))


def page_messages(tag: str) -> dict[str, str]:
    """The map page's words in `tag` (msgid -> text), from the `page` catalogue."""
    words = translations(tag, "page")
    return {msgid: words.gettext(msgid) for msgid in _page_msgids()}


def check_catalogues() -> None:
    """Every language's catalogues compiled and not older than their sources (create_app calls
    this: a stale or missing catalogue stops the start with one line, never wrong words later)."""
    for tag in LANGUAGES:
        if tag == DEFAULT:
            continue
        for domain in DOMAINS:
            po = TRANSLATIONS / locale_id(tag) / "LC_MESSAGES" / f"{domain}.po"
            mo = po.with_suffix(".mo")
            if not po.is_file():
                raise CatalogueError(f"no catalogue {po.relative_to(TRANSLATIONS.parent.parent)}")
            if not mo.is_file() or mo.stat().st_mtime < po.stat().st_mtime:
                raise CatalogueError(
                    f"{mo.relative_to(TRANSLATIONS.parent.parent)} is missing or older than its .po:"
                    " run `make translations` (pybabel compile; a fuzzy catalogue is not compiled)"
                )
