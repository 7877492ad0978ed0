"""`flask --app wsgi indoor init-db | demo`."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from indoor.extensions import get_db


@click.group()
def indoor():
    """Indoor maps service commands."""


@indoor.command("init-db")
@click.option("--demo-if-empty", is_flag=True, help="Also write the demo building when the database is empty.")
@with_appcontext
def init_db_command(demo_if_empty):
    """Create extensions, tables, missing columns, indexes and triggers. Idempotent; drops nothing."""
    from indoor.queries import schema

    started = time.perf_counter()
    with get_db().transaction() as cur:
        steps = schema.init_db(cur)
    click.echo(f"init-db: {', '.join(steps)} ok in {time.perf_counter() - started:.2f}s")
    if demo_if_empty:
        with get_db().transaction() as cur:
            empty = schema.is_empty(cur)
        if empty:
            _write_demo(seed=1, buildings=1, levels=3, grid=10)
        else:
            click.echo("init-db: database has data, demo not written")


@indoor.command("demo")
@click.option("--seed", default=1, show_default=True, help="Same seed, same campus.")
@click.option("--buildings", default=1, show_default=True)
@click.option("--levels", default=3, show_default=True)
@click.option("--grid", default=10, show_default=True, help="Corridor nodes per side of a level.")
@click.option("--min-edges", default=0, help="Add buildings until the campus has at least this many edges.")
@click.option("--columns", default=0, help="Buildings per row of a grid of buildings (0: all in one row).")
@with_appcontext
def demo_command(seed, buildings, levels, grid, min_edges, columns):
    """Write a generated multi-level campus (appends; ids continue after the existing ones)."""
    from indoor.demo import DemoSize

    size = DemoSize(buildings=buildings, levels=levels, grid=grid)
    while min_edges and size.estimated_edges() < min_edges:
        size = DemoSize(buildings=size.buildings + 1, levels=levels, grid=grid)
    _write_demo(seed=seed, buildings=size.buildings, levels=levels, grid=grid, columns=columns)


@indoor.command("import-osm")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--building", default=None, help="Building name stored on the rooms and the floor plan.")
@with_appcontext
def import_osm_command(path, building):
    """Import an OSM extract with Simple Indoor Tagging (appends; ids continue after the existing ones)."""
    from indoor.importers import osm
    from indoor.queries import network, schema

    started = time.perf_counter()
    nodes, ways = osm.read_osm(path)
    with get_db().transaction() as cur:
        first_vertex, first_edge = network.next_ids(cur)
        counts = network.write_network(cur, osm.build_network(nodes, ways, first_vertex, first_edge, building))
    with get_db().transaction() as cur:
        schema.analyze(cur)
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    click.echo(f"import-osm: {summary} in {time.perf_counter() - started:.1f}s")
    _build_overlay()


@indoor.command("build-overlay")
@click.option("--force", is_flag=True, help="Rebuild even when the overlay is the current graph's.")
@with_appcontext
def build_overlay_command(force):
    """Build the route overlay (shortcuts between cells) for the current graph."""
    _build_overlay(force=force)


def _build_overlay(force=False):
    from indoor.queries.overlay import Built
    from indoor.routing import overlay

    result = overlay.build_now(force=force)
    if isinstance(result, Built):
        click.echo(
            f"build-overlay: {result.cells} cells, {result.boundary_vertices} boundary vertices,"
            f" {result.edges_between_cells} edges between cells, {result.shortcuts} shortcuts"
            f" ({result.shortcut_edges} edges unpacked) in {result.build_ms / 1000:.1f}s"
        )
    else:
        why = {"fresh": "already current", "locked": "a lock held by another client: try again later"}
        click.echo(f"build-overlay: {why.get(result, 'another build is running')}")


@indoor.command("check-graph")
@with_appcontext
def check_graph_command():
    """Report breaches of the routing invariants (DATA.md); exit 1 if there is one."""
    from indoor.queries import graph

    with get_db().transaction(timeout_ms=600_000) as cur:
        results = graph.check_graph(cur)
    breaches = 0
    for result in results:
        kind = "BREACH" if result["breach"] and result["count"] else ("note" if result["count"] else "ok")
        sample = f" e.g. {', '.join(map(str, result['sample']))}" if result["count"] else ""
        click.echo(f"{kind:6} {result['check']}: {result['count']}{sample}")
        breaches += result["count"] if result["breach"] else 0
    if breaches:
        raise SystemExit(1)


def _write_demo(seed, buildings, levels, grid, columns=0):
    from indoor.demo import DemoSize, generate
    from indoor.queries import network, schema

    started = time.perf_counter()
    with get_db().transaction() as cur:
        first_vertex, first_edge = network.next_ids(cur)
        campus = generate(
            DemoSize(buildings=buildings, levels=levels, grid=grid, columns=columns), seed, first_vertex, first_edge
        )
        counts = network.write_network(cur, campus)
    with get_db().transaction() as cur:
        schema.analyze(cur)
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    click.echo(f"demo: {buildings} building(s) x {levels} levels: {summary} in {time.perf_counter() - started:.1f}s")
    _build_overlay()
