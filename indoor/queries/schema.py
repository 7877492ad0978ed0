"""`indoor init-db`: create what is missing, never drop, rewrite or lose a row.

Every statement is idempotent (IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, OR REPLACE, ON CONFLICT
DO NOTHING). `ADD COLUMN ... NOT NULL DEFAULT <constant>` does not rewrite a table on
PostgreSQL 11+, so upgrading an old database that has only the bare tables keeps it online.
"""

from __future__ import annotations

from indoor.queries.validity import RETIRED_TRIGGERS, TRACKED, TRIGGER_SUFFIXES, plain_sql

# Serialises concurrent init-db runs (e.g. several containers starting at once). A
# transaction-scoped lock, so it also works through pgbouncer in transaction mode.
LOCK = "SELECT pg_advisory_xact_lock(hashtext('indoor.init_db'))"

EXTENSIONS = [
    "CREATE EXTENSION IF NOT EXISTS postgis",
    "CREATE EXTENSION IF NOT EXISTS pgrouting",
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
]


def extension_names() -> list[str]:
    """The extensions init-db creates: what operators must install, what a backup carries."""
    return [statement.rsplit(" ", 1)[1] for statement in EXTENSIONS]


TABLES = [
    """CREATE TABLE IF NOT EXISTS room_points (
        ogc_fid serial PRIMARY KEY,
        text text NOT NULL,
        level numeric NOT NULL DEFAULT 0,
        building text,
        category text,
        wkb_geometry geometry(Point, 4326) NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS base_floor (
        ogc_fid serial PRIMARY KEY,
        layer text,
        name text,
        level numeric NOT NULL DEFAULT 0,
        building text,
        wkb_geometry geometry(Geometry, 4326) NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS nav_edges_work_vertices_pgr (
        id bigint PRIMARY KEY,
        level numeric NOT NULL DEFAULT 0,
        the_geom geometry(Point, 4326) NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS nav_edges_final (
        id bigint PRIMARY KEY,
        source bigint NOT NULL,
        target bigint NOT NULL,
        cost double precision NOT NULL,
        reverse_cost double precision NOT NULL,
        kind text NOT NULL DEFAULT 'corridor',
        wkb_geometry geometry(LineString, 4326) NOT NULL)""",
    # The service's own: versions bumped by triggers, read into every cache key.
    """CREATE TABLE IF NOT EXISTS indoor_versions (
        name text PRIMARY KEY,
        version bigint NOT NULL DEFAULT 1,
        changed_at timestamptz NOT NULL DEFAULT now())""",
    "INSERT INTO indoor_versions (name) VALUES ('graph'), ('rooms'), ('floor') ON CONFLICT (name) DO NOTHING",
    # The service's own: a level's display name where the source has one (OSM level:ref, IMDF
    # level short_name), per building; a level without a row is shown by its number.
    """CREATE TABLE IF NOT EXISTS indoor_level_names (
        building text NOT NULL DEFAULT '',
        level numeric NOT NULL,
        name text NOT NULL,
        PRIMARY KEY (building, level))""",
    # The service's own: which network rows an import wrote for a building (the contract tables
    # have no building column on vertices and edges), so `indoor import --replace` finds them.
    """CREATE TABLE IF NOT EXISTS indoor_building_vertices (
        vertex bigint PRIMARY KEY,
        building text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS indoor_building_edges (
        edge bigint PRIMARY KEY,
        building text NOT NULL)""",
    # The service's own: the route overlay (indoor/queries/overlay.py), rebuilt after edits.
    """CREATE TABLE IF NOT EXISTS indoor_route_overlay (
        id int PRIMARY KEY CHECK (id = 1),
        graph_key text NOT NULL,
        built_at timestamptz NOT NULL,
        build_ms double precision NOT NULL,
        edges integer NOT NULL,
        cells integer NOT NULL,
        edges_between_cells integer NOT NULL,
        boundary_vertices integer NOT NULL,
        shortcuts integer NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS indoor_route_cells (
        vertex bigint PRIMARY KEY,
        cell bigint NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS indoor_route_edges (
        id bigint NOT NULL,
        source bigint NOT NULL,
        target bigint NOT NULL,
        cost double precision NOT NULL,
        reverse_cost double precision NOT NULL,
        kind text NOT NULL,
        cell bigint)""",
    """CREATE TABLE IF NOT EXISTS indoor_route_shortcuts (
        id bigint PRIMARY KEY,
        cell bigint NOT NULL,
        source bigint NOT NULL,
        target bigint NOT NULL,
        cost double precision NOT NULL,
        nodes bigint[] NOT NULL,
        edges bigint[] NOT NULL,
        costs double precision[] NOT NULL)""",
    # The network's connected components per profile, ignoring direction, for one graph version
    # (built with the overlay): two vertices in different components are not connected.
    """CREATE TABLE IF NOT EXISTS indoor_route_components (
        graph_key text NOT NULL,
        profile text NOT NULL,
        vertex bigint NOT NULL,
        component bigint NOT NULL,
        PRIMARY KEY (graph_key, profile, vertex))""",
]

# Older databases have the bare tables only (ogr2ogr output, pgr_createTopology vertices).
COLUMNS = [
    "ALTER TABLE room_points ADD COLUMN IF NOT EXISTS level numeric NOT NULL DEFAULT 0",
    "ALTER TABLE room_points ADD COLUMN IF NOT EXISTS building text",
    "ALTER TABLE room_points ADD COLUMN IF NOT EXISTS category text",
    "ALTER TABLE base_floor ADD COLUMN IF NOT EXISTS layer text",
    "ALTER TABLE base_floor ADD COLUMN IF NOT EXISTS name text",
    "ALTER TABLE base_floor ADD COLUMN IF NOT EXISTS level numeric NOT NULL DEFAULT 0",
    "ALTER TABLE base_floor ADD COLUMN IF NOT EXISTS building text",
    "ALTER TABLE nav_edges_final ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'corridor'",
    "ALTER TABLE nav_edges_work_vertices_pgr ADD COLUMN IF NOT EXISTS level numeric NOT NULL DEFAULT 0",
]

INDEXES = [
    # GiST on every geometry; (level, geometry) where queries filter by level and use KNN <->.
    "CREATE INDEX IF NOT EXISTS room_points_geom_idx ON room_points USING gist (wkb_geometry)",
    "CREATE INDEX IF NOT EXISTS room_points_level_geom_idx ON room_points USING gist (level, wkb_geometry)",
    "CREATE INDEX IF NOT EXISTS base_floor_geom_idx ON base_floor USING gist (wkb_geometry)",
    "CREATE INDEX IF NOT EXISTS nav_edges_final_geom_idx ON nav_edges_final USING gist (wkb_geometry)",
    "CREATE INDEX IF NOT EXISTS nav_vertices_geom_idx ON nav_edges_work_vertices_pgr USING gist (the_geom)",
    "CREATE INDEX IF NOT EXISTS nav_vertices_level_geom_idx"
    " ON nav_edges_work_vertices_pgr USING gist (level, the_geom)",
    # Keyset paging per level: WHERE level = $1 AND ogc_fid > $2 ORDER BY ogc_fid.
    "CREATE INDEX IF NOT EXISTS room_points_level_idx ON room_points (level, ogc_fid)",
    "CREATE INDEX IF NOT EXISTS base_floor_level_idx ON base_floor (level, ogc_fid)",
    # Room search: case-insensitive substring, served by trigrams.
    "CREATE INDEX IF NOT EXISTS room_points_text_trgm_idx ON room_points USING gin (lower(text) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS nav_edges_final_source_idx ON nav_edges_final (source)",
    "CREATE INDEX IF NOT EXISTS nav_edges_final_target_idx ON nav_edges_final (target)",
    "CREATE INDEX IF NOT EXISTS indoor_building_vertices_building_idx ON indoor_building_vertices (building)",
    "CREATE INDEX IF NOT EXISTS indoor_building_edges_building_idx ON indoor_building_edges (building)",
    # A route loads two cells' edges, the edges between cells (cell IS NULL) and shortcuts by cell.
    "CREATE INDEX IF NOT EXISTS indoor_route_edges_cell_idx ON indoor_route_edges (cell)",
    "CREATE INDEX IF NOT EXISTS indoor_route_shortcuts_cell_idx ON indoor_route_shortcuts (cell)",
]

# A statement-level trigger: one bump per INSERT/UPDATE/DELETE/TRUNCATE statement, by any
# client (psql, QGIS, ogr2ogr), committed with that statement's transaction.
TRIGGERS = [
    """CREATE OR REPLACE FUNCTION indoor_bump_version() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         UPDATE indoor_versions SET version = version + 1, changed_at = clock_timestamp()
          WHERE name = TG_ARGV[0];
         RETURN NULL;
       END $$""",
    """CREATE OR REPLACE TRIGGER indoor_graph_version
       AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON nav_edges_final
       FOR EACH STATEMENT EXECUTE FUNCTION indoor_bump_version('graph')""",
    """CREATE OR REPLACE TRIGGER indoor_graph_version
       AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON nav_edges_work_vertices_pgr
       FOR EACH STATEMENT EXECUTE FUNCTION indoor_bump_version('graph')""",
    """CREATE OR REPLACE TRIGGER indoor_rooms_version
       AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON room_points
       FOR EACH STATEMENT EXECUTE FUNCTION indoor_bump_version('rooms')""",
    # The floor plan's version keys the vector tiles' ETags and the OGC collection extents.
    """CREATE OR REPLACE TRIGGER indoor_floor_version
       AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON base_floor
       FOR EACH STATEMENT EXECUTE FUNCTION indoor_bump_version('floor')""",
]

# Which edges each graph version changed (ids; NULL: too many to list, or a TRUNCATE), so a
# worker's route index follows an edit by reading only the edges it touched. Logged by triggers
# that fire after indoor_graph_version (triggers fire in name order), so `version` is the one this
# statement's bump made, with its time (graph keys are version and time: a log of another
# database's history never matches); the last 10,000 versions are kept.
GRAPH_CHANGES = [
    """CREATE TABLE IF NOT EXISTS indoor_graph_changes (
        version bigint NOT NULL,
        edge_ids bigint[],
        changed_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS indoor_graph_changes_version_idx ON indoor_graph_changes (version)",
    """CREATE OR REPLACE FUNCTION indoor_log_graph_change() RETURNS trigger
       LANGUAGE plpgsql AS $$
       DECLARE
         ids bigint[];
         current_version bigint;
         current_changed timestamptz;
       BEGIN
         IF TG_TABLE_NAME <> 'nav_edges_final' THEN
           -- vertices: no edge pgRouting reads, but the route geometry's drawing and snaps
           -- (queries/route_geometry.py VERTICES_CHANGED: no edge has this id in our data)
           ids := '{-1}';
         ELSIF TG_OP = 'TRUNCATE' THEN
           ids := NULL;
         ELSIF TG_OP = 'INSERT' THEN
           SELECT coalesce(array_agg(id), '{}') INTO ids FROM (SELECT id FROM indoor_new_rows LIMIT 10001) n;
         ELSIF TG_OP = 'DELETE' THEN
           SELECT coalesce(array_agg(id), '{}') INTO ids FROM (SELECT id FROM indoor_old_rows LIMIT 10001) o;
         ELSE
           SELECT coalesce(array_agg(id), '{}') INTO ids
             FROM (SELECT id FROM indoor_old_rows UNION SELECT id FROM indoor_new_rows LIMIT 10001) u;
         END IF;
         IF cardinality(ids) > 10000 THEN
           ids := NULL;
         END IF;
         SELECT version, changed_at INTO current_version, current_changed FROM indoor_versions WHERE name = 'graph';
         INSERT INTO indoor_graph_changes (version, edge_ids, changed_at) VALUES (current_version, ids, current_changed);
         DELETE FROM indoor_graph_changes WHERE version < current_version - 10000;
         RETURN NULL;
       END $$""",
    """CREATE OR REPLACE TRIGGER indoor_graph_xlog_insert AFTER INSERT ON nav_edges_final
       REFERENCING NEW TABLE AS indoor_new_rows FOR EACH STATEMENT EXECUTE FUNCTION indoor_log_graph_change()""",
    """CREATE OR REPLACE TRIGGER indoor_graph_xlog_update AFTER UPDATE ON nav_edges_final
       REFERENCING OLD TABLE AS indoor_old_rows NEW TABLE AS indoor_new_rows
       FOR EACH STATEMENT EXECUTE FUNCTION indoor_log_graph_change()""",
    """CREATE OR REPLACE TRIGGER indoor_graph_xlog_delete AFTER DELETE ON nav_edges_final
       REFERENCING OLD TABLE AS indoor_old_rows FOR EACH STATEMENT EXECUTE FUNCTION indoor_log_graph_change()""",
    """CREATE OR REPLACE TRIGGER indoor_graph_xlog_truncate AFTER TRUNCATE ON nav_edges_final
       FOR EACH STATEMENT EXECUTE FUNCTION indoor_log_graph_change()""",
    """CREATE OR REPLACE TRIGGER indoor_graph_xlog AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
       ON nav_edges_work_vertices_pgr FOR EACH STATEMENT EXECUTE FUNCTION indoor_log_graph_change()""",
]


# The service's own: which rows of the rooms and the floor plan are not plain (queries/validity.py,
# "decided once"), kept by statement triggers as rows are written, so listings read every other
# row with the plain expressions. A key is listed while any row holding it is not plain (a table
# without the contract's keys may hold it twice). init-db creates the triggers first (their lock
# holds writers back until it commits), then lists what is already there.
def _unusable_statements() -> list[str]:
    statements = [
        """CREATE TABLE IF NOT EXISTS indoor_unusable_rows (
            tbl text NOT NULL,
            id bigint NOT NULL,
            PRIMARY KEY (tbl, id))""",
    ]
    for table, (trigger, key, geometry, level, texts, ccw) in TRACKED.items():
        plain_t = plain_sql(f"t.{geometry}", f"t.{level}", tuple(f"t.{text}" for text in texts), ccw)
        plain_n = plain_sql(f"n.{geometry}", f"n.{level}", tuple(f"n.{text}" for text in texts), ccw)
        function = f"{trigger}_rows"
        retired = RETIRED_TRIGGERS[table]
        # An earlier release's triggers decided less: gone, so that no write lists by their rules.
        statements += [f"DROP TRIGGER IF EXISTS {retired}{suffix} ON {table}" for suffix in TRIGGER_SUFFIXES]
        statements += [f"DROP FUNCTION IF EXISTS {retired}_rows()"]
        statements += [
            f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
               LANGUAGE plpgsql AS $$
               BEGIN
                 IF TG_OP = 'TRUNCATE' THEN
                   DELETE FROM indoor_unusable_rows WHERE tbl = '{table}';
                   RETURN NULL;
                 END IF;
                 IF TG_OP IN ('UPDATE', 'DELETE') THEN
                   DELETE FROM indoor_unusable_rows u
                    WHERE u.tbl = '{table}' AND u.id IN (SELECT o.{key} FROM indoor_old_rows o)
                      AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = u.id AND {plain_t} IS NOT TRUE);
                 END IF;
                 IF TG_OP IN ('UPDATE', 'INSERT') THEN
                   INSERT INTO indoor_unusable_rows (tbl, id)
                   SELECT DISTINCT '{table}', n.{key} FROM indoor_new_rows n
                    WHERE n.{key} IS NOT NULL AND {plain_n} IS NOT TRUE
                   ON CONFLICT DO NOTHING;
                 END IF;
                 RETURN NULL;
               END $$""",  # noqa: S608 - constant names and fragments
            f"""CREATE OR REPLACE TRIGGER {trigger} AFTER INSERT ON {table}
               REFERENCING NEW TABLE AS indoor_new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
            f"""CREATE OR REPLACE TRIGGER {trigger}_update AFTER UPDATE ON {table}
               REFERENCING OLD TABLE AS indoor_old_rows NEW TABLE AS indoor_new_rows
               FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
            f"""CREATE OR REPLACE TRIGGER {trigger}_delete AFTER DELETE ON {table}
               REFERENCING OLD TABLE AS indoor_old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
            f"""CREATE OR REPLACE TRIGGER {trigger}_truncate AFTER TRUNCATE ON {table}
               FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
            f"DELETE FROM indoor_unusable_rows WHERE tbl = '{table}'",  # noqa: S608 - constant names
            f"""INSERT INTO indoor_unusable_rows (tbl, id)
                SELECT DISTINCT '{table}', t.{key} FROM {table} t WHERE t.{key} IS NOT NULL AND {plain_t} IS NOT TRUE""",  # noqa: S608
        ]
    return statements


UNUSABLE = _unusable_statements()

# The service's own, for operating a building live (indoor/live/): bearer tokens (only a hash
# of each), closures (what was asked and the edges it resolved to; kept after removal as
# history) and the change events an open map listens to. Closure and version changes write
# their events in the same transaction as the change (ids increase in commit order of the
# sequence, so a reader that polls `id > last` never skips a committed one for long: see
# live/events.py); a closure's 'closures' version keys the workers' closure lists.
LIVE = [
    """CREATE TABLE IF NOT EXISTS indoor_tokens (
        name text PRIMARY KEY,
        token_sha256 bytea NOT NULL UNIQUE,
        scopes text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz)""",
    """CREATE TABLE IF NOT EXISTS indoor_closures (
        id bigserial PRIMARY KEY,
        rooms bigint[] NOT NULL DEFAULT '{}',
        requested_edges bigint[] NOT NULL DEFAULT '{}',
        edges bigint[] NOT NULL DEFAULT '{}',
        area geometry(Polygon, 4326),
        levels numeric[] NOT NULL DEFAULT '{}',
        label text,
        buildings text[] NOT NULL DEFAULT '{}',
        starts_at timestamptz NOT NULL DEFAULT now(),
        ends_at timestamptz,
        reason text,
        profiles text[],
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text,
        deleted_at timestamptz,
        deleted_by text)""",
    """CREATE TABLE IF NOT EXISTS indoor_events (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        action text NOT NULL,
        building text,
        payload jsonb NOT NULL,
        once text UNIQUE,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp())""",
    "CREATE INDEX IF NOT EXISTS indoor_events_created_idx ON indoor_events (created_at)",
    "INSERT INTO indoor_versions (name) VALUES ('closures') ON CONFLICT (name) DO NOTHING",
    """CREATE OR REPLACE TRIGGER indoor_closures_version
       AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON indoor_closures
       FOR EACH STATEMENT EXECUTE FUNCTION indoor_bump_version('closures')""",
    # A closure as events carry it (the API's shape, see live/closures.py).
    """CREATE OR REPLACE FUNCTION indoor_closure_json(c indoor_closures) RETURNS jsonb
       LANGUAGE sql STABLE AS $$
         SELECT jsonb_build_object(
           'id', c.id, 'rooms', to_jsonb(c.rooms), 'edges_closed', cardinality(c.edges),
           'label', c.label, 'levels', to_jsonb(c.levels), 'buildings', to_jsonb(c.buildings),
           'starts_at', to_char(c.starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'ends_at', to_char(c.ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'reason', c.reason, 'profiles', to_jsonb(c.profiles))
       $$""",
    # One event per closure and action (`once`): the trigger and the watchers' boundary sweep
    # (live/events.py) may both see a boundary; the first one writes it.
    """CREATE OR REPLACE FUNCTION indoor_closure_event(c indoor_closures, what text) RETURNS void
       LANGUAGE sql AS $$
         INSERT INTO indoor_events (kind, action, building, payload, once)
         SELECT 'closure', what, b, jsonb_build_object('closure', indoor_closure_json(c)),
                'closure:' || c.id || ':' || what || ':' || coalesce(b, '')
           FROM unnest(CASE WHEN cardinality(c.buildings) > 0 THEN c.buildings ELSE ARRAY[NULL::text] END) b
         ON CONFLICT (once) DO NOTHING
       $$""",
    """CREATE OR REPLACE FUNCTION indoor_closure_changed() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'INSERT' AND NEW.starts_at <= now() AND (NEW.ends_at IS NULL OR NEW.ends_at > now()) THEN
           PERFORM indoor_closure_event(NEW, 'opened');
         ELSIF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
           PERFORM indoor_closure_event(NEW, 'removed');
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE OR REPLACE TRIGGER indoor_closure_events
       AFTER INSERT OR UPDATE ON indoor_closures
       FOR EACH ROW EXECUTE FUNCTION indoor_closure_changed()""",
    # The graph, rooms and floor plan: one event per version bump, for every building.
    """CREATE OR REPLACE FUNCTION indoor_version_changed() RETURNS trigger
       LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.name IN ('graph', 'rooms', 'floor') AND NEW.version <> OLD.version THEN
           INSERT INTO indoor_events (kind, action, payload)
           VALUES (NEW.name, 'changed', jsonb_build_object('version', NEW.version));
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE OR REPLACE TRIGGER indoor_version_events
       AFTER UPDATE ON indoor_versions
       FOR EACH ROW EXECUTE FUNCTION indoor_version_changed()""",
]

ANALYZE = [
    "ANALYZE room_points",
    "ANALYZE base_floor",
    "ANALYZE nav_edges_final",
    "ANALYZE nav_edges_work_vertices_pgr",
]

IS_EMPTY = "SELECT NOT EXISTS (SELECT 1 FROM room_points) AND NOT EXISTS (SELECT 1 FROM nav_edges_final)"


def init_db(cur) -> list[str]:
    """Run every step in order inside the caller's transaction; return the step names."""
    steps = []
    cur.execute(LOCK)
    for group_name, group in (
        ("extensions", EXTENSIONS),
        ("tables", TABLES),
        ("columns", COLUMNS),
        ("indexes", INDEXES),
        ("triggers", TRIGGERS),
        ("graph changes", GRAPH_CHANGES),
        ("unusable rows", UNUSABLE),
        ("live", LIVE),
    ):
        for statement in group:
            cur.execute(statement)
        steps.append(group_name)
    return steps


def analyze(cur) -> None:
    for statement in ANALYZE:
        cur.execute(statement)


def is_empty(cur) -> bool:
    cur.execute(IS_EMPTY)
    return bool(cur.fetchone()[0])
