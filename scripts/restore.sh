#!/usr/bin/env bash
# scripts/restore.sh FILE: restores a scripts/backup.sh dump into the empty database at
# DATABASE_URL (or POSTGRES_HOST/...; PostgreSQL itself, not pgbouncer), in one transaction, then
# runs init-db (the version triggers and whatever a newer release adds). Refuses a database that
# already has any of the tables: restore into a new database, then point the service at it.
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: scripts/restore.sh FILE" >&2; exit 2; fi
file=$1
[ -r "$file" ] || { echo "restore: cannot read $file" >&2; exit 1; }
root=$(cd "$(dirname "$0")/.." && pwd)
python=python3
[ -x "$root/.venv/bin/python" ] && python=$root/.venv/bin/python
env_lines=$("$python" "$root/scripts/pg_env.py") || exit 1
eval "$env_lines"
export PGAPPNAME=indoor-restore PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

present=$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT string_agg(c.relname, ', ' ORDER BY c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    AND (c.relname IN ('room_points', 'base_floor', 'nav_edges_final', 'nav_edges_work_vertices_pgr')
         OR c.relname LIKE 'indoor\_%')")
if [ -n "$present" ]; then
  echo "restore: the database $PGDATABASE already has $present: restore into an empty database" >&2
  exit 1
fi

# Everything but the extensions' comments and the rows of their own tables (spatial_ref_sys:
# only their owner may write those; the service's data is in SRID 4326) and the version
# triggers (their function is init-db's; init-db creates both after the data is in).
ours='(room_points|base_floor|nav_edges_final|nav_edges_work_vertices_pgr|indoor_[a-z0-9_]+)'
list=$(mktemp)
trap 'rm -f "$list"' EXIT
pg_restore --list "$file" | awk -v ours="TABLE DATA public $ours " '
  /^[0-9]+; [0-9]+ [0-9]+ (COMMENT - EXTENSION|TRIGGER) / { next }
  /^[0-9]+; [0-9]+ [0-9]+ TABLE DATA / && $0 !~ ours { next }
  { print }' > "$list"
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --use-list="$list" \
  --dbname="${PGDATABASE:?DATABASE_URL names no database}" "$file"
cd "$root"
"$python" -m flask --app wsgi indoor init-db
echo "restore: $file into $PGDATABASE"
