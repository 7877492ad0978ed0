"""One JSON error shape for every 4xx/5xx: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from indoor.db import DatabaseUnavailable

log = logging.getLogger(__name__)

# werkzeug's status -> our code
_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    414: "uri_too_long",
    422: "unprocessable",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """Raise anywhere below a view to answer with this status, code and message."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None, details=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or {}  # more fields of "error" (e.g. the closures a 422 names)


class BadRequest(ApiError):
    def __init__(self, message: str):
        super().__init__(400, "bad_request", message)


class NotFound(ApiError):
    def __init__(self, message: str = "not found"):
        super().__init__(404, "not_found", message)


def error_response(status: int, code: str, message: str, headers: dict | None = None, details=None):
    response = jsonify({"error": {"code": code, "message": message, **(details or {})}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.details)

    @app.errorhandler(DatabaseUnavailable)
    def _db_unavailable(exc: DatabaseUnavailable):
        log.warning("database unavailable: %s", exc.why)
        return error_response(503, "unavailable", f"database unavailable: {exc.why}", {"Retry-After": "1"})

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = _CODES.get(status, "http_error")
        if status == 429:
            message = f"rate limit exceeded: {exc.description}"
        elif status == 405:
            message = "method not allowed"
        elif status == 404:
            message = "no such resource"
        else:
            message = _plain(exc.description) or exc.name
        response = error_response(status, code, message)
        for key, value in exc.get_headers():
            if key.lower() not in ("content-type", "content-length"):
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Logged (and sent to Sentry by its integration); never shown to the client.
        log.exception("unhandled error")
        return error_response(500, "internal", "internal error")


def _plain(text) -> str:
    text = str(text or "")
    return text if "<" not in text else ""
