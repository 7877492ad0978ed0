#!/usr/bin/env bash
# Writes pgbouncer's configuration from the environment, then runs pgbouncer in the foreground.
#   deploy/pgbouncer.ini, with its [databases] section replaced by one database:
#     $POSTGRES_DB = host=$DB_HOST port=$DB_PORT dbname=$POSTGRES_DB
#   the user list: "$POSTGRES_USER" "$POSTGRES_PASSWORD" (pgbouncer does SCRAM with it both ways)
#   every PGBOUNCER_<NAME>=value as `<name> = value` after the file's own settings (last wins),
#     e.g. PGBOUNCER_MAX_CLIENT_CONN=2000, PGBOUNCER_DEFAULT_POOL_SIZE=20
set -euo pipefail
: "${POSTGRES_USER:?set POSTGRES_USER}" "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" "${POSTGRES_DB:?set POSTGRES_DB}"
template=${PGBOUNCER_TEMPLATE:-/etc/pgbouncer/pgbouncer.ini}
dir=${PGBOUNCER_CONFIG_DIR:-/tmp/pgbouncer}
mkdir -p "$dir"
umask 077
printf '"%s" "%s"\n' "${POSTGRES_USER//\"/\"\"}" "${POSTGRES_PASSWORD//\"/\"\"}" > "$dir/userlist.txt"
{
  echo "[databases]"
  echo "$POSTGRES_DB = host=${DB_HOST:-db} port=${DB_PORT:-5432} dbname=$POSTGRES_DB"
  echo
  # the file without its own [databases] entries
  sed '/^\[databases\]/,/^\[pgbouncer\]/{/^\[pgbouncer\]/!d}' "$template"
  echo "auth_file = $dir/userlist.txt"
  echo "unix_socket_dir ="
  echo "logfile ="
  echo "pidfile ="
  while IFS='=' read -r name value; do
    case "$name" in
      PGBOUNCER_TEMPLATE | PGBOUNCER_CONFIG_DIR) ;;
      PGBOUNCER_*) key=${name#PGBOUNCER_}; echo "${key,,} = $value" ;;
    esac
  done < <(env)
} > "$dir/pgbouncer.ini"
exec pgbouncer "$dir/pgbouncer.ini"
