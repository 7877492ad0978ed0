"""`indoor check-graph` as people read it: the DATA.md invariants, then whether rooms connect.

`print_report` is what the command prints (text or JSON); the import commands call it after a
derived import. It returns the number of errors; the command exits 1 when there is one.
"""

from __future__ import annotations

import json

import click

from indoor.extensions import get_db


def print_report(building: str | None = None, as_json: bool = False, room_distance_m: float | None = None) -> int:
    from indoor.queries import connectivity, graph

    with get_db().transaction(timeout_ms=600_000) as cur:
        checks = graph.check_graph(cur)
        report = connectivity.connectivity_report(
            cur, building, connectivity.ROOM_DISTANCE_M if room_distance_m is None else room_distance_m
        )
    breaches = sum(c["count"] for c in checks if c["breach"])
    errors = breaches + report["errors"]
    if as_json:
        click.echo(json.dumps({"checks": checks, **report, "errors": errors}, allow_nan=False))
        return errors
    for check in checks:
        kind = "BREACH" if check["breach"] and check["count"] else ("note" if check["count"] else "ok")
        sample = f" e.g. {', '.join(map(str, check['sample']))}" if check["count"] else ""
        click.echo(f"{kind:6} {check['check']}: {check['count']}{sample}")
    for profile, found in report["components"].items():
        others = found["largest"][1:]
        rest = f"; next largest {', '.join(map(str, others))}" if others else ""
        largest = found["largest"][0] if found["largest"] else 0
        click.echo(f"{'info':6} components ({profile}): {found['count']} (largest {largest} vertices{rest})")
    if report["missing_building"]:
        click.echo(f"{'ERROR':6} no rooms of building {report['missing_building']!r}")
    fine = 0
    for entry in report["buildings"]:
        if not (
            entry["unreachable"]["walking"] or entry["unreachable"]["accessible"] or entry["levels_without_vertical"]
        ):
            fine += 1
        else:
            _print_building(entry)
        far = entry["far_rooms"]
        if far:
            listed = ", ".join(f"{_room(r)} {r['metres']} m" for r in far[:10])
            click.echo(
                f"{'note':6} {_name(entry)}: {len(far)} rooms farther than {report['room_distance_m']:g} m from any"
                f" vertex on their level: {listed}"
            )
    if fine:
        click.echo(
            f"{'ok':6} {fine} building(s): every room reaches its building's main component (walking and accessible),"
            " every level has a way up or down"
        )
    traps = report["one_way_traps"]
    listed = "; ".join(
        f"{t['vertices']} vertices that {t['kind']} (vertex {t['sample_vertex']}, level {t['level']})"
        for t in traps[:10]
    )
    click.echo(f"{'ERROR' if traps else 'ok':6} one-way traps: {len(traps)}{': ' + listed if traps else ''}")
    click.echo(f"check-graph: {errors} error(s)")
    return errors


def _name(entry: dict) -> str:
    return repr(entry["building"]) if entry["building"] else "(no building)"


def _print_building(entry: dict) -> None:
    name = _name(entry)
    for profile, kind in (("walking", "ERROR"), ("accessible", "note")):
        rooms = entry["unreachable"][profile]
        listed = ", ".join(_room(r) for r in rooms[:20]) + (", ..." if len(rooms) > 20 else "")
        tail = f": {listed}" if rooms else ""
        click.echo(
            f"{kind if rooms else 'ok':6} {name}: {len(rooms)} of {entry['rooms']} rooms cannot reach the main"
            f" component ({profile}){tail}"
        )
    levels = entry["levels_without_vertical"]
    click.echo(
        f"{'ERROR' if levels else 'ok':6} {name}: levels without stairs, escalator, elevator or ramp to another"
        f" level: {', '.join(map(str, levels)) or 'none'}"
    )


def _room(room: dict) -> str:
    where = "no vertex on its level" if room.get("no_vertex") else f"level {room['level']}"
    return f"{room['name']} ({where})"
