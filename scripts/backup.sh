#!/usr/bin/env bash
# scripts/backup.sh FILE: a pg_dump (custom format) of the four contract tables, the service's
# own indoor_* tables and init-db's extensions, from DATABASE_URL (or POSTGRES_HOST/...).
# Point it at PostgreSQL itself, not at pgbouncer (pg_dump keeps session state).
# Restore with scripts/restore.sh FILE. Read-only: takes no lock that blocks the service.
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: scripts/backup.sh FILE" >&2; exit 2; fi
file=$1
root=$(cd "$(dirname "$0")/.." && pwd)
python=python3
[ -x "$root/.venv/bin/python" ] && python=$root/.venv/bin/python
env_lines=$("$python" "$root/scripts/pg_env.py") || exit 1
eval "$env_lines"
export PGAPPNAME=indoor-backup PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

tables=(-t public.room_points -t public.base_floor -t public.nav_edges_final -t public.nav_edges_work_vertices_pgr
  -t 'public.indoor_*')
# the extensions init-db creates (postgis, pgrouting, ...), and no others the server happens to
# have: restore creates them where missing, and a managed database's user may create no more
extensions=()
for name in $(PYTHONPATH="$root" "$python" -c 'from indoor.queries.schema import extension_names as e; print(*e())'); do
  extensions+=(-e "$name")
done

tmp="$file.partial"
trap 'rm -f "$tmp"' EXIT
pg_dump --format=custom --no-owner --no-privileges "${tables[@]}" "${extensions[@]}" --file="$tmp"
mv "$tmp" "$file"
trap - EXIT
echo "backup: $file ($(pg_restore --list "$file" | grep -c 'TABLE DATA') tables, $(du -h "$file" | cut -f1))"
