#!/usr/bin/env bash
# scripts/backup.sh FILE: a pg_dump (custom format) of the four contract tables, the service's
# own indoor_* tables and the extensions they need, from DATABASE_URL (or POSTGRES_HOST/...).
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
# the extensions the tables need (postgis, pgrouting, ...): restore creates them if missing
extensions=()
while read -r name; do extensions+=(-e "$name"); done < <(
  psql -X -At -v ON_ERROR_STOP=1 -c "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1")

tmp="$file.partial"
trap 'rm -f "$tmp"' EXIT
pg_dump --format=custom --no-owner --no-privileges "${tables[@]}" "${extensions[@]}" --file="$tmp"
mv "$tmp" "$file"
trap - EXIT
echo "backup: $file ($(pg_restore --list "$file" | grep -c 'TABLE DATA') tables, $(du -h "$file" | cut -f1))"
