"""The errors routing adds to indoor/errors.py's: 422 no_route, 422 route_too_long, 503 busy."""

from __future__ import annotations

from indoor.errors import ApiError


class NoRoute(ApiError):
    def __init__(self, message: str, cache_state: str | None = None, closures: list | None = None):
        details = {"closures": closures} if closures else None
        super().__init__(422, "no_route", message, {"X-Cache": cache_state} if cache_state else None, details)


class RouteTooLong(ApiError):
    """Over the cost budget of one request (ROUTE_MAX_LENGTH_M): the body, its legs and
    directions grow with the length, and vias multiply it."""

    def __init__(self, length_m: float, limit_m: float, cache_state: str, at_least: bool = False):
        long = "at least " if at_least else ""
        super().__init__(
            422,
            "route_too_long",
            f"the route through these places is {long}{length_m:,.0f} m long; a request may ask for at most"
            f" {limit_m:,.0f} m (ROUTE_MAX_LENGTH_M): ask for fewer or nearer vias, or split the route",
            {"X-Cache": cache_state},
        )


class RoutesBusy(ApiError):
    """Every slot for an uncached route computation of this worker stayed taken for
    ROUTE_QUEUE_WAIT_S: fail soon, so health checks and cached routes never wait behind them."""

    def __init__(self, waited_s: float):
        super().__init__(
            503,
            "unavailable",
            f"too many routes are being computed; none could start within {waited_s:g} s: retry shortly",
            {"Retry-After": "1"},
        )
