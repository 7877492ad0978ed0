"""Print `export PGHOST=...` lines for the database the service is configured with (DATABASE_URL,
or POSTGRES_HOST/...: config.settings decides), for libpq tools in shell scripts: the password
travels in the environment, never on a command line. Standard library only.

    eval "$(python3 scripts/pg_env.py)"
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import Settings  # noqa: E402

# libpq URL parameters that have an environment variable
PARAMETERS = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "connect_timeout": "PGCONNECT_TIMEOUT"}


def libpq_environment(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    env = {
        "PGHOST": unquote(parts.hostname or ""),
        "PGPORT": str(parts.port or ""),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": unquote(parts.path.lstrip("/")),
    }
    for name, value in parse_qsl(parts.query):
        if name in PARAMETERS:
            env[PARAMETERS[name]] = value
    return {name: value for name, value in env.items() if value}


def main() -> int:
    url = Settings.from_env().database_url
    if not url:
        print(
            "DATABASE_URL is not set: set it to the PostgreSQL database itself (not pgbouncer), "
            "e.g. DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME",
            file=sys.stderr,
        )
        return 1
    if not url.startswith(("postgresql://", "postgres://")):
        print("DATABASE_URL must be a postgresql:// URL", file=sys.stderr)
        return 1
    for name, value in libpq_environment(url).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
