"""Indoor maps and routing backend: `create_app()` builds one app per gunicorn worker."""

from __future__ import annotations

import logging

import click
from flask import Flask

from config.settings import Settings, SettingsError


class StartRefused(click.ClickException, ValueError):
    """A setting that cannot be used: `flask ... indoor <command>` prints its one line
    ("Error: invalid setting ...") and exits 1, without a traceback (click shows a ClickException
    raised while the app loads). gunicorn checks the settings before any worker starts."""


def create_app(test_config: dict | None = None) -> Flask:
    """settings -> logging -> extensions -> blueprints -> errors -> commands."""
    try:
        settings = Settings.from_env(test_config)
    except SettingsError as exc:
        raise StartRefused(str(exc)) from None
    app = Flask(__name__)
    app.config.update(settings.extra)
    app.config["TESTING"] = settings.testing or app.config.get("TESTING", False)
    app.json.sort_keys = False
    # "/api/rooms" and "/api/rooms/" are the same resource: no redirects. "//api//rooms//" is
    # no resource (404), not a redirect whose Location would carry the request's Host.
    app.url_map.strict_slashes = False
    app.url_map.merge_slashes = False

    from indoor import db, extensions, i18n, metrics, observability, security

    try:
        i18n.check_catalogues()  # a missing or stale catalogue stops the start: never wrong words later
    except i18n.CatalogueError as exc:
        raise StartRefused(str(exc)) from None
    observability.init_app(app, settings)
    security.init_app(app, settings)
    db.make_cooperative()
    extensions.init_app(app, settings)
    metrics.init_app(app, settings)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    logging.getLogger(__name__).debug("app created")
    return app


def register_blueprints(app: Flask) -> None:
    from indoor.blueprints import client, closures, events, floors, health, ogc, openapi, rooms, routes, tiles

    app.register_blueprint(health.blueprint, url_prefix="/api/health")
    app.register_blueprint(openapi.blueprint, url_prefix="/api")
    app.register_blueprint(rooms.blueprint, url_prefix="/api")
    app.register_blueprint(floors.blueprint, url_prefix="/api")
    app.register_blueprint(routes.blueprint, url_prefix="/api/route")
    app.register_blueprint(ogc.blueprint, url_prefix="/ogc")
    app.register_blueprint(tiles.blueprint, url_prefix="/api")
    app.register_blueprint(closures.blueprint, url_prefix="/api/closures")
    app.register_blueprint(events.blueprint, url_prefix="/api/events")
    app.register_blueprint(client.blueprint)


def register_errorhandlers(app: Flask) -> None:
    from indoor import errors

    errors.register_errorhandlers(app)


def register_commands(app: Flask) -> None:
    from indoor.ops import cli

    app.cli.add_command(cli.indoor)
