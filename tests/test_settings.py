"""Settings checked at start: a bad value stops every way of starting the service (gunicorn and
each `flask indoor` command) with one line naming the setting, the value and what is allowed, a
non-zero exit and no traceback. Before, each of these started and failed later (a 500 per route,
rate limiting silently off, a 5 s wait per request) or ended the CLI in a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scripts.services import free_port
from tests.conftest import ROOT, run_cli

# setting -> a value someone could write, and words of what the line must say is allowed.
BAD_SETTINGS = {
    "RATELIMIT_DEFAULT": ("lots", "600/minute"),
    "RATELIMIT_ROUTE": ("120/fortnight", "600/minute"),
    "WALKING_SPEED_MPS": ("0", "greater than 0"),
    "ESCALATOR_PENALTY_S": ("inf", "0 or more"),
    "STAIRS_PENALTY_S": ("-1", "penalties only add cost"),
    "ELEVATOR_PENALTY_S": ("nan", "0 or more"),
    "PG_STATEMENT_TIMEOUT_MS": ("-5", "1 or more"),
    "PG_CONNECT_TIMEOUT": ("0", "greater than 0"),
    "ROUTE_MAX_SNAP_M": ("nan", "greater than 0"),
    "ROUTE_INDEX_DIR": ("var/route-index", "absolute directory path"),
    "DB_POOL_SIZE": ("0", "1 or more"),
    "SSE_BATCH_SIZE": ("abc", "whole number"),
    "LOG_LEVEL": ("LOUD", "DEBUG, INFO, WARNING"),
    "LOG_FORMAT": ("xml", "json or text"),
    "DATABASE_URL": ("garbage", "postgresql://"),
    "REDIS_URL": ("garbage", "redis://"),
    "RATELIMIT_STORAGE_URL": ("nowhere", "redis://"),
    "ENVIRONMENT": ("prod", "production or development"),
    "SENTRY_DSN": ("garbage", "Sentry DSN"),
    "SENTRY_TRACES_SAMPLE_RATE": ("2", "from 0 to 1"),
    "TRUSTED_HOSTS": ("maps.example.org/path", "host names"),
    "CORS_ORIGINS": ("maps.example.org", "origins"),
    "POSTGRES_SSL_MODE": ("sometimes", "verify-full"),
    "RATELIMIT_ENABLED": ("maybe", "true or false"),
}


def assert_one_line_naming(output: str, name: str, value: str, allowed: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    assert lines[0].startswith("Error: invalid setting "), lines[0]
    assert f"{name}={value!r}" in lines[0] or f"{name}='{value}" in lines[0], lines[0]
    assert allowed in lines[0], lines[0]


@pytest.mark.parametrize("name", sorted(BAD_SETTINGS))
def test_a_bad_setting_stops_the_cli_with_one_line(name):
    value, allowed = BAD_SETTINGS[name]
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/indoor"  # never reached
    if name == "DATABASE_URL":
        url = value
    result = run_cli(url, "check-graph", env={name: value})
    assert result.returncode == 1, result.stdout
    assert_one_line_naming(result.stderr, name, value, allowed)


def test_every_cli_command_checks_the_settings():
    from indoor.ops.cli import indoor

    for command in sorted(indoor.commands):
        result = run_cli("", command, "--help", env={"WALKING_SPEED_MPS": "-1"})
        assert result.returncode == 1, (command, result.stdout)
        assert_one_line_naming(result.stderr, "WALKING_SPEED_MPS", "-1", "greater than 0")


def _gunicorn(env: dict) -> subprocess.CompletedProcess:
    binary = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "gunicorn"
    environment = {
        **os.environ,
        "BIND": f"127.0.0.1:{free_port()}",
        "WEB_CONCURRENCY": "1",
        "ENVIRONMENT": "development",
        "DATABASE_URL": "",
        **env,
    }
    return subprocess.run(
        [str(binary), "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "name", ["RATELIMIT_DEFAULT", "WALKING_SPEED_MPS", "DB_POOL_SIZE", "LOG_LEVEL", "ROUTE_MAX_SNAP_M", "ENVIRONMENT"]
)
def test_a_bad_setting_stops_gunicorn_before_any_worker(name):
    value, allowed = BAD_SETTINGS[name]
    result = _gunicorn({name: value})
    assert result.returncode == 1
    assert result.stdout == ""  # no "Starting gunicorn", no worker booted
    assert_one_line_naming(result.stderr, name, value, allowed)


def test_the_line_never_shows_a_password():
    result = run_cli("mysql://indoor:s3cret-pass@db.example/indoor", "check-graph")
    assert result.returncode == 1
    assert "s3cret-pass" not in result.stderr and "DATABASE_URL" in result.stderr
