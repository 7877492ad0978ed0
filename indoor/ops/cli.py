"""`flask --app wsgi indoor init-db | demo | import | import-osm | build-overlay | check-graph`."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from indoor.extensions import get_db
from indoor.ops.operator_errors import OperatorErrorsGroup


@click.group(cls=OperatorErrorsGroup)
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
    from indoor.ops.demo import DemoSize

    least = {"--buildings": (buildings, 1), "--levels": (levels, 1), "--grid": (grid, 2)}
    least.update({"--min-edges": (min_edges, 0), "--columns": (columns, 0)})
    for option, (value, minimum) in least.items():
        if value < minimum:  # one line, before anything is written (click's range errors take four)
            raise click.ClickException(f"{option} must be {minimum} or more, not {value}")

    size = DemoSize(buildings=buildings, levels=levels, grid=grid)
    while min_edges and size.estimated_edges() < min_edges:
        size = DemoSize(buildings=size.buildings + 1, levels=levels, grid=grid)
    _write_demo(seed=seed, buildings=size.buildings, levels=levels, grid=grid, columns=columns)


IGNORE_ROUTING_LINES = click.option(
    "--ignore-routing-lines",
    is_flag=True,
    help="Derive the whole network from rooms, corridors and doors, leaving out the source's routing lines.",
)


@indoor.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--building", default=None, help="Building name stored on the rooms and the floor plan.")
@click.option("--replace", is_flag=True, help="Swap the building's rows (rooms, floor plan, network) for the file's.")
@click.option("--level", "level", default=None, help="GDAL files: the level of every feature (e.g. 1, -1, 0.5).")
@click.option("--level-field", default=None, help="GDAL files: the field holding each feature's level.")
@click.option("--kind-field", default=None, help="GDAL files: the field holding a feature's kind.")
@click.option("--kind-map", default=None, help="GDAL files: VALUE=KIND,... e.g. 3=stairs,4=elevator.")
@click.option("--name-field", default=None, help="GDAL files: the field naming rooms (room labels).")
@click.option("--category-field", default=None, help="GDAL files: the field holding a room's category.")
@click.option(
    "--crs",
    default=None,
    help="GDAL files: the CRS of the coordinates, for a file without one (DXF) or a wrong one; e.g. EPSG:3857.",
)
@IGNORE_ROUTING_LINES
@with_appcontext
def import_command(
    path,
    building,
    replace,
    level,
    level_field,
    kind_field,
    kind_map,
    name_field,
    category_field,
    crs,
    ignore_routing_lines,
):
    """Import a building: OSM XML/PBF/GeoJSON, an IMDF archive, or any file GDAL reads (appends)."""
    from decimal import Decimal, InvalidOperation

    from indoor.importers.gdal import Mapping, parse_kind_map

    if level is not None and level_field:
        raise click.UsageError("give --level or --level-field, not both")
    try:
        level = Decimal(level) if level is not None else None
    except InvalidOperation:
        raise click.BadParameter(f"{level!r} is not a level", param_hint="--level") from None
    if level is not None and not level.is_finite():
        raise click.BadParameter(f"{level} is not a level", param_hint="--level")
    try:
        kinds = parse_kind_map(kind_map)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--kind-map") from None
    if kinds and not kind_field:
        raise click.UsageError("--kind-map needs --kind-field")
    mapping = Mapping(level, level_field, kind_field, kinds, name_field, category_field, crs)
    _import(path, building, replace, mapping, not ignore_routing_lines, "import")


@indoor.command("import-osm")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--building", default=None, help="Building name stored on the rooms and the floor plan.")
@click.option("--replace", is_flag=True, help="Swap the building's rows for the file's.")
@IGNORE_ROUTING_LINES
@with_appcontext
def import_osm_command(path, building, replace, ignore_routing_lines):
    """Alias of `import` (kept for scripts): an OSM extract (XML, PBF, GeoJSON), or any source `import` reads."""
    from indoor.importers.gdal import Mapping

    _import(path, building, replace, Mapping(), not ignore_routing_lines, "import-osm")


def _import(path, building, replace, mapping, routing_lines, command):
    """Read, derive, write in one transaction; a failure prints one line and exits 1."""
    if replace and not building:  # rows without a building may be anyone's (ogr2ogr, psql)
        raise click.UsageError("--replace needs --building: the building whose rows are swapped")
    import psycopg2

    from indoor.db import DatabaseUnavailable
    from indoor.importers import dispatch
    from indoor.importers.plan import UnreadableSource
    from indoor.queries import schema

    started = time.perf_counter()
    try:
        source_format = dispatch.detect_format(path)
        plan = dispatch.read_plan(path, source_format, mapping, routing_lines)
        result = dispatch.import_plan(get_db(), plan, source_format, building, replace)
    except dispatch.UsageError as error:
        raise click.UsageError(str(error)) from None
    except UnreadableSource as error:
        click.echo(f"{command}: nothing imported: {error}", err=True)
        raise SystemExit(1) from None
    except (psycopg2.Error, DatabaseUnavailable) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        click.echo(f"{command}: nothing imported: {path}: the database refused the rows: {reason}", err=True)
        raise SystemExit(1) from None
    except Exception as error:  # a geometry no step expected: still one line, still nothing written
        reason = " ".join(str(error).split())
        click.echo(f"{command}: nothing imported: {path}: {type(error).__name__}: {reason}", err=True)
        raise SystemExit(1) from None
    with get_db().transaction() as cur:
        schema.analyze(cur)
    replaced = f" (replaced {', '.join(f'{v} {k}' for k, v in result.deleted.items())})" if replace else ""
    summary = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    click.echo(f"{command}: {result.format}: {summary}{replaced} in {time.perf_counter() - started:.1f}s")
    if result.closures:
        lost = result.closures["rooms_lost"] + result.closures["edges_lost"]
        click.echo(
            f"{command}: {result.closures['closures']} closures follow the new rows"
            + (
                f" ({result.closures['rooms_lost']} rooms, {result.closures['edges_lost']} edges not found again)"
                if lost
                else ""
            )
        )
    if result.stairs_joined or result.stairs_open:
        click.echo(
            f"{command}: {result.stairs_joined} stairs ends joined to another level,"
            f" {result.stairs_open} still open (waiting for the next floor's file)"
        )
    _build_overlay()
    from indoor.ops.graph_report import print_report

    print_report(building)


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
@click.option("--building", default=None, help="Report on this building's rooms only.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@click.option("--room-distance", default=None, type=float, help="Metres beyond which a room is far from the graph.")
@with_appcontext
def check_graph_command(building, as_json, room_distance):
    """Report breaches of the routing invariants (DATA.md) and whether rooms connect; exit 1 on an error."""
    from indoor.ops.graph_report import print_report

    if print_report(building, as_json, room_distance):
        raise SystemExit(1)


@indoor.group("token")
def token_group():
    """Bearer tokens for the write endpoints (only a hash of each is stored)."""


@token_group.command("create")
@click.option("--name", required=True, help="Who or what uses it (unique); writes record it.")
@click.option("--scope", "scopes", required=True, multiple=True, help="closures:write (repeatable).")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None, help="Expire after this many days.")
@with_appcontext
def token_create_command(name, scopes, expires_days):
    """Make a token and print it once: it cannot be shown again."""
    from indoor.live import auth
    from indoor.queries import tokens

    unknown = [s for s in scopes if s not in auth.SCOPES]
    if unknown:
        raise click.UsageError(f"unknown scope {unknown[0]!r}; known: {', '.join(auth.SCOPES)}")
    if not name.strip() or len(name) > 100 or not name.isprintable():
        raise click.UsageError("--name must be 1 to 100 printable characters")
    token, digest = auth.new_token()
    with get_db().transaction() as cur:
        created = tokens.create(cur, name, digest, sorted(set(scopes)), expires_days)
    if not created:
        raise click.UsageError(f"a token named {name!r} exists: revoke it or choose another name")
    click.echo(token)


@token_group.command("list")
@with_appcontext
def token_list_command():
    """Names, scopes, created, last used, expiry and revocation (never the tokens)."""
    from indoor.queries import tokens

    with get_db().transaction() as cur:
        rows = tokens.listing(cur)
    click.echo("name\tscopes\tcreated\tlast_used\texpires\trevoked")
    for name, scopes, created, used, expires, revoked in rows:
        cells = [
            name,
            ",".join(scopes),
            *(t.isoformat(timespec="seconds") if t else "-" for t in (created, used, expires, revoked)),
        ]
        click.echo("\t".join(cells))


@token_group.command("revoke")
@click.argument("name")
@with_appcontext
def token_revoke_command(name):
    """Revoke a token at once (kept, marked revoked)."""
    from indoor.queries import tokens

    with get_db().transaction() as cur:
        revoked = tokens.revoke(cur, name)
    if not revoked:
        raise click.UsageError(f"no active token named {name!r}")
    click.echo(f"token {name!r} revoked")


def _write_demo(seed, buildings, levels, grid, columns=0):
    from indoor.ops.demo import DemoSize, generate
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
