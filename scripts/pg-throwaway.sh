#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster as the postgres user in a temp dir on a free port.
# Prints the DATABASE_URL on stdout; `scripts/pg-throwaway.sh stop DIR` stops it.
set -euo pipefail
if [ "${1:-}" = "stop" ]; then
  runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pg_ctl" -D "$2/data" -m fast stop >/dev/null 2>&1 || true
  exit 0
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
dir=$(mktemp -d /tmp/proplab-pg.XXXXXX)
chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1
# Members of three groups must log in with a password, each group by one method
# (tests/wire_test.ts); first match wins, so these go before initdb's trust rules.
hba="$dir/data/pg_hba.conf"
{
  echo "host all +proplab_scram_users 127.0.0.1/32 scram-sha-256"
  echo "host all +proplab_md5_users 127.0.0.1/32 md5"
  echo "host all +proplab_password_users 127.0.0.1/32 password"
  cat "$hba"
} >"$hba.new"
mv "$hba.new" "$hba"
chown postgres "$hba"
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
runuser -u postgres -- "$bin/psql" -h "$dir" -p "$port" -U postgres -qc \
  "create role proplab_scram_users; create role proplab_md5_users; create role proplab_password_users;" \
  postgres >/dev/null
echo "PGDIR=$dir"
echo "DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
