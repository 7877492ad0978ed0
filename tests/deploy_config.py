"""What the deployment files are checked against: the environment variables the service reads."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Settings' own test switch, never set in a deployment.
NOT_DEPLOYED = {"TESTING"}
# DATABASE_URL may be given in parts (config/settings.py, _url_from_parts).
DATABASE_URL_PARTS = {"POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}


def settings_names() -> set[str]:
    """Every variable `Settings.from_env` reads by field name."""
    return {f.name.upper() for f in dataclasses.fields(Settings) if f.name != "extra"} - NOT_DEPLOYED


def gunicorn_names() -> set[str]:
    """Every variable config/gunicorn.conf.py reads."""
    text = (ROOT / "config" / "gunicorn.conf.py").read_text()
    return set(re.findall(r"os\.environ(?:\.get\(|\[)\"([A-Z0-9_]+)\"", text))


def service_names() -> set[str]:
    """Everything the service's processes read from the environment."""
    return settings_names() | gunicorn_names() | DATABASE_URL_PARTS


def env_example_names(path: Path = DEPLOY / ".env.example") -> tuple[set[str], set[str]]:
    """(names set, names only shown commented with their default) in an env file."""
    active, commented = set(), set()
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Z][A-Z0-9_]*)=", line):
            active.add(match[1])
        elif match := re.match(r"^# ([A-Z][A-Z0-9_]*)=", line):
            commented.add(match[1])
    return active, commented - active
