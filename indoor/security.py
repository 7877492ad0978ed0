"""What HTTP in front of the service needs: the real client address behind trusted proxies,
allowed host names, CORS for the map clients' origins, and security headers on every response."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from indoor.errors import BadRequest

# Headers a browser map client may read from a cross-origin response.
EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-Cache",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
]
# Request headers a cross-origin client may send (EventSource's resume header among them).
ALLOWED_HEADERS = ["Last-Event-ID", "X-Request-ID", "Cache-Control", "Accept"]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The API serves no HTML; should anything ever render as a page, it may load nothing.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_app(app: Flask, settings) -> None:
    if settings.trusted_proxy_count > 0:
        # Believe exactly as many X-Forwarded-For/-Proto entries as there are proxies of ours:
        # entries a client wrote itself lie further left and are ignored. X-Forwarded-Host is
        # never believed (nginx passes a client's through untouched).
        n = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0, x_port=0, x_prefix=0)
    if settings.trusted_hosts:
        # Ours, not Flask's TRUSTED_HOSTS (case-sensitive, and it ignores the port): the first
        # thing every request meets, so no link is ever built from a Host it refuses.
        trusted = [_host_and_port(entry) for entry in settings.trusted_hosts]
        app.before_request(lambda: _refuse_foreign_host(trusted))
    if settings.cors_origins:
        from flask_cors import CORS

        CORS(
            app,
            resources={r"/api/*": {}, r"/ogc/*": {}},
            origins=[origin.rstrip("/") for origin in settings.cors_origins],
            methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            supports_credentials=False,
            max_age=600,
            vary_header=True,
        )
    app.before_request(_refuse_huge_query)
    app.after_request(_security_headers)
    # Flask's own OPTIONS answer is an empty text/html body; ours names the methods, no body.
    app.make_default_options_response = lambda: _options_response(app)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_and_port(value: str) -> tuple[str, int | None]:
    """'Maps.Example.org:8443' -> ('maps.example.org', 8443); ValueError for a bad port."""
    parts = urlsplit(f"//{value.strip()}")
    return (parts.hostname or "").rstrip("."), parts.port


def host_allowed(host_header: str, trusted: list[tuple[str, int | None]], scheme: str, server_port: str) -> bool:
    """A Host names a TRUSTED_HOSTS entry, whatever its case, at a port clients use: the entry's
    own when it names one, else the scheme's default or the port this server listens on. An entry
    starting with a dot also matches names under it (.example.org: maps.example.org)."""
    try:
        name, port = _host_and_port(host_header)
    except ValueError:
        return False
    if not name:
        return False
    default = _DEFAULT_PORTS.get(scheme)
    for trusted_name, trusted_port in trusted:
        if trusted_name.startswith("."):
            named = name == trusted_name[1:] or name.endswith(trusted_name)
        else:
            named = name == trusted_name
        if not named:
            continue
        if trusted_port is not None:
            if port == trusted_port or (port is None and trusted_port == default):
                return True
        elif port is None or port == default or str(port) == server_port:
            return True
    return False


def _refuse_foreign_host(trusted: list[tuple[str, int | None]]):
    environ = request.environ
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    if not host_allowed(host, trusted, environ.get("wsgi.url_scheme", "http"), environ.get("SERVER_PORT", "")):
        raise BadRequest("the Host header names no host and port this service answers to")


def _options_response(app: Flask):
    """200 with `Allow` and no content (CORS preflights get their headers added after this)."""
    adapter = app.create_url_adapter(request)
    methods = adapter.allowed_methods() if adapter is not None else []
    response = app.response_class(status=200)
    response.allow.update(methods)
    del response.headers["Content-Type"]
    return response


# gunicorn lets request lines through up to 1 MB (limit_request_line = 0) so that the app, not
# gunicorn's HTML page, answers an absurd URL; the app caps it here, as a JSON 400.
MAX_QUERY_BYTES = 8192


def _refuse_huge_query():
    if len(request.environ.get("QUERY_STRING", "")) > MAX_QUERY_BYTES:
        raise BadRequest(f"the query string is too long (at most {MAX_QUERY_BYTES} bytes)")


def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
