#!/usr/bin/env bash
# Installs the Debian packages the service, its tests and its benchmark need, when missing.
# As root it installs them; otherwise it names what to install and fails.
set -euo pipefail

need=()
have_ext() { ls /usr/share/postgresql/*/extension/"$1".control >/dev/null 2>&1; }
have_ext postgis || need+=(postgresql-15-postgis-3)
have_ext pgrouting || need+=(postgresql-15-pgrouting)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v redis-server >/dev/null || need+=(redis-server)
command -v npm >/dev/null || need+=(nodejs npm)   # builds the map page (make client)
if [ "${1:-}" = "--test" ]; then
  command -v pgbouncer >/dev/null || need+=(pgbouncer)
  command -v ogr2ogr >/dev/null || need+=(gdal-bin)  # GDAL's OAPIF and MVT drivers (tests/test_ogc.py, test_tiles.py)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
  command -v chromium >/dev/null || need+=(chromium)
  command -v docker-compose >/dev/null || need+=(docker-compose)
fi
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null || need+=(wrk)
  command -v ogr2ogr >/dev/null || need+=(gdal-bin)  # the GIS rows copy through ogr2ogr
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]}" >&2
  echo "install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages start their own services; ours run on free ports, theirs stay out of the way.
for svc in nginx pgbouncer; do
  if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
