"""The one error routing adds to indoor/errors.py's: 422 no_route."""

from __future__ import annotations

from indoor.errors import ApiError


class NoRoute(ApiError):
    def __init__(self, message: str, cache_state: str | None = None, closures: list | None = None):
        details = {"closures": closures} if closures else None
        super().__init__(422, "no_route", message, {"X-Cache": cache_state} if cache_state else None, details)
