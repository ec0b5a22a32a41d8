#!/usr/bin/env bash
# Installs (Debian packages) and starts what the tests talk to: PostgreSQL on localhost:5432 with
# role/database `medkg`/`medkg_test`, headless Chromium for the UI check, and the Prometheus,
# Pushgateway and promtool binaries (the metrics tests start those themselves on free ports).
# Idempotent; called by `make test` (and so by CI).
set -euo pipefail
missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "start_test_services: ${missing[*]} missing and not root; those tests will be skipped" >&2
    exit 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
version=$(ls /etc/postgresql | sort -n | tail -1)
pg_ctlcluster "$version" main status >/dev/null 2>&1 || pg_ctlcluster "$version" main start
as_postgres() { (cd / && runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAc "$1"); }
for _ in $(seq 1 30); do as_postgres "select 1" >/dev/null 2>&1 && break; sleep 1; done
[ "$(as_postgres "select 1 from pg_roles where rolname='medkg'")" = 1 ] ||
  as_postgres "create role medkg login password 'medkg'"
[ "$(as_postgres "select 1 from pg_database where datname='medkg_test'")" = 1 ] ||
  as_postgres "create database medkg_test owner medkg"
echo "start_test_services: PostgreSQL $version up on localhost:5432 (medkg/medkg_test)"
