#!/bin/sh
# Creates Temporal's two PostgreSQL databases on the first start and migrates both to this image's schema
# version on every start (so a server upgrade is: bump the image tags, `docker compose up`).
set -eu
sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"; }
schema=/etc/temporal/schema/postgresql/v12
for pair in temporal:temporal temporal_visibility:visibility; do
  db=${pair%%:*}
  dir=$schema/${pair##*:}/versioned
  sql --db "$db" create 2>/dev/null || echo "database $db exists"
  # update-schema fails only on a database that was never set up.
  if ! sql --db "$db" update-schema -d "$dir"; then
    sql --db "$db" setup-schema -v 0.0
    sql --db "$db" update-schema -d "$dir"
  fi
done
echo "Temporal schema is up to date"
