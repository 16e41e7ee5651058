#!/usr/bin/env bash
# Records the PostgreSQL scenario: a real PostgreSQL server (Debian's
# postgresql, version 15 on bookworm) with psql and pgbench as clients,
# on loopback inside a private network namespace (record_loopback.sh):
#   1. psql (sslmode=prefer: an SSLRequest the server refuses, then the
#      startup as user postgres, database shop) runs, one statement per
#      Query: CREATE TABLE, an INSERT of two rows, a SELECT of them, an
#      INSERT of a duplicate key (SQLSTATE 23505, unique_violation), a
#      SELECT from a missing table (42P01, undefined_table), and two
#      statements in one Query;
#   2. pgbench -M prepared runs a parameterised SELECT three times with
#      the extended protocol: one Parse of a named statement, then Bind
#      and Execute for each run;
#   3. pgbench -M extended runs a division by zero (22012) at Execute;
#   4. psql asks for a database that does not exist: the server refuses
#      the startup (3D000, invalid_catalog_name).
#
# Needs root, unshare, tcpdump and PostgreSQL's server and clients
# (Debian: postgresql, which also creates the postgres user).
#
#   testdata/scenarios/make_postgres.sh OUT.pcap
set -euo pipefail
here=$(dirname "$(realpath "$0")")
if [ "${1:-}" != --inside ]; then
  out=${1:?usage: make_postgres.sh OUT.pcap}
  exec "$here/record_loopback.sh" "$out" 'tcp port 5432' -- "$0" --inside
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d /tmp/trawl-pg.XXXXXX)
chown postgres: "$work"
as_pg() { runuser -u postgres -- "$@"; }
trap 'as_pg "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
as_pg "$bin/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
as_pg "$bin/pg_ctl" -D "$work/data" -w -l "$work/log" \
  -o "-c listen_addresses=127.0.0.1 -c port=5432 -c unix_socket_directories=$work -c ssl=off" start >/dev/null
# Set up over the Unix socket, which tcpdump does not see.
as_pg "$bin/psql" -h "$work" -U postgres -qc 'CREATE DATABASE shop' >/dev/null
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres
PGSSLMODE=prefer "$bin/psql" -X -d shop -v ON_ERROR_STOP=0 <<'SQL' || true
CREATE TABLE users (id int PRIMARY KEY, name text);
INSERT INTO users VALUES (1, 'ada'), (2, 'brian');
SELECT id, name FROM users ORDER BY id;
INSERT INTO users VALUES (1, 'again');
SELECT * FROM missing_table;
SELECT count(*) FROM users \; SELECT max(id) FROM users;
SQL
printf '\\set id random(1, 2)\nSELECT name FROM users WHERE id = :id;\n' > "$work/select.sql"
PGSSLMODE=disable "$bin/pgbench" -n -M prepared -t 3 -f "$work/select.sql" shop
printf 'SELECT 1 / (count(*) - 2) FROM users;\n' > "$work/divide.sql"
PGSSLMODE=disable "$bin/pgbench" -n -M extended -t 1 -f "$work/divide.sql" shop || true
PGSSLMODE=disable "$bin/psql" -X -d no_such_db -c 'SELECT 1' || true
