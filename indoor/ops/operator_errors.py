"""One clear line instead of a traceback when a CLI command meets a database it cannot use.

`OperatorErrorsGroup` is the class of the `flask indoor` group: every command added to it (by
any module) gets the translation for free. An operator reads what to set or check and the
command exits 1; errors that are not about reaching or preparing the database keep their
traceback (they are bugs to report). Its commands (`DatabaseCommand`) connect before they run,
so a command that reads a large file first, or handles database errors its own way, still
stops at once with that line when the database cannot be reached.
"""

from __future__ import annotations

import click
import psycopg2
import psycopg2.errors

from indoor.db import DatabaseUnavailable

INIT_DB = "flask --app wsgi indoor init-db"
NOT_CONFIGURED = (
    "DATABASE_URL is not set: set it to the PostgreSQL database, e.g. "
    "DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME "
    "(or set POSTGRES_HOST, POSTGRES_DB, POSTGRES_USER, POSTGRES_PASSWORD)"
)


class DatabaseCommand(click.Command):
    """A command that needs the database: connects first (after its arguments are parsed, so
    `--help` needs no database). The connection stays in the pool for the command's own work."""

    def invoke(self, ctx):
        from flask.cli import ScriptInfo

        from indoor.extensions import get_db

        app = ctx.ensure_object(ScriptInfo).load_app()
        with app.app_context(), get_db().connection(replica_ok=False):
            pass
        return super().invoke(ctx)


class OperatorErrorsGroup(click.Group):
    command_class = DatabaseCommand

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (DatabaseUnavailable, psycopg2.Error) as exc:
            message = operator_message(exc)
            if message is None:
                raise
            raise click.ClickException(message) from None


def operator_message(exc: BaseException) -> str | None:
    """What an operator should set or check for `exc`; None for errors that are not theirs."""
    if isinstance(exc, DatabaseUnavailable):
        if exc.why == "not configured":
            return NOT_CONFIGURED
        cause = exc.__cause__
        if isinstance(cause, psycopg2.Error):
            return operator_message(cause)
        return f"the database is unavailable ({exc.why}): check DATABASE_URL and that PostgreSQL is running"
    if isinstance(exc, psycopg2.OperationalError) and not exc.pgcode:
        return _connection_message(_one_line(str(exc)))
    if isinstance(exc, psycopg2.errors.UndefinedTable):
        return f"{_one_line(exc.pgerror)}: the schema is missing, run `{INIT_DB}` first"
    if isinstance(exc, psycopg2.errors.UndefinedFile):
        return (
            f"{_one_line(exc.pgerror)}: the PostgreSQL server lacks an extension; "
            "install PostGIS and pgRouting there (Debian: postgresql-15-postgis-3 postgresql-15-pgrouting)"
        )
    if isinstance(exc, psycopg2.errors.InsufficientPrivilege):
        reason = _one_line(exc.pgerror)
        if "extension" in reason:
            return f"{reason}: have a superuser run CREATE EXTENSION for {_extension_names()} in this database, then run init-db again"
        return f"{reason}: grant the DATABASE_URL user the privilege, or use one that has it"
    return None


def _extension_names() -> str:
    from indoor.queries.schema import extension_names

    return ", ".join(extension_names())


def _connection_message(reason: str) -> str:
    lowered = reason.lower()
    if "password" in lowered or "authentication" in lowered or ("role" in lowered and "does not exist" in lowered):
        check = "the user and password in DATABASE_URL"
    elif "database" in lowered and "does not exist" in lowered:
        check = "the database name in DATABASE_URL (create the database, or fix the name)"
    else:
        check = "the host and port in DATABASE_URL, and that PostgreSQL is running and reachable from here"
    return f"cannot connect to PostgreSQL: {reason}; check {check}"


def _one_line(text: str | None) -> str:
    """libpq's multi-line messages ("FATAL:  ...", hints) as one line, without the severity."""
    parts = [line.strip() for line in (text or "").splitlines() if line.strip()]
    line = " ".join(parts).replace("FATAL:  ", "").replace("ERROR:  ", "")
    return line or "no reason given"
