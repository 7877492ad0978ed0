"""Logging (JSON lines or text), request IDs, one access-log line per request, Sentry."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

access_log = logging.getLogger("indoor.access")
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def init_app(app: Flask, settings) -> None:
    configure_logging(settings)
    init_sentry(settings)
    app.before_request(_start_request)
    app.after_request(_finish_request)


def request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


def _start_request():
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    if _sentry_enabled:
        import sentry_sdk

        # On this request's own scope: its errors and its transaction both carry the id.
        sentry_sdk.set_tag("request_id", g.request_id)


def _finish_request(response):
    response.headers["X-Request-ID"] = g.get("request_id") or uuid.uuid4().hex
    # Probes answer every few seconds: log them only when they fail.
    if not request.path.startswith("/api/health") or response.status_code >= 400:
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
                "client": request.remote_addr,
            },
        )
    return response


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id()
        return True


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class TextFormatter(logging.Formatter):
    """Readable lines for development, with the `extra=` fields as key=value at the end."""

    def format(self, record):
        line = super().format(record)
        extras = [f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD_ATTRS and not k.startswith("_")]
        return f"{line} {' '.join(extras)}" if extras else line


def configure_logging(settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if settings.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    # Replace our own handler on re-creation (tests build many apps) instead of stacking.
    for old in [h for h in root.handlers if getattr(h, "_indoor", False)]:
        root.removeHandler(old)
    handler._indoor = True
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


_sentry_enabled = False


def init_sentry(settings) -> None:
    global _sentry_enabled
    _sentry_enabled = bool(settings.sentry_dsn)
    if not settings.sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    def traces_sampler(context):
        environ = context.get("wsgi_environ") or {}
        path = environ.get("PATH_INFO", "")
        if path.startswith(("/api/health", "/metrics")) or "text/event-stream" in environ.get("HTTP_ACCEPT", ""):
            return 0.0
        return settings.sentry_traces_sample_rate

    def before_send(event, hint):
        rid = request_id()
        if rid:
            event.setdefault("tags", {})["request_id"] = rid
        return scrub(event, hint)

    def scrub(event, hint):
        # Query strings carry places (a route's `from` is where a person stands): not sent.
        request_data = event.get("request")
        if isinstance(request_data, dict):
            request_data.pop("query_string", None)
            if isinstance(request_data.get("url"), str):
                request_data["url"] = request_data["url"].split("?", 1)[0]
        return event

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[FlaskIntegration()],
        send_default_pii=False,
        traces_sampler=traces_sampler,
        before_send=before_send,
        before_send_transaction=scrub,
        # Frame locals would carry the request (with its query string) and parameter values.
        include_local_variables=False,
        environment=settings.sentry_environment,
        release=settings.sentry_release or None,
    )
