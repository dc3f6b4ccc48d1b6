#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d), as the
# superuser POSTGRES_USER, which nothing else uses afterwards. It makes the group roles of
# migration 0013 and one login per role (their passwords come from compose), and gives the
# database to the migration owner, so `alembic upgrade` (service migrate) owns every table and
# the application never connects as an owner or a superuser. See README "Database roles".
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner_pw="$SHOPJOBS_OWNER_DB_PASSWORD" -v app_pw="$SHOPJOBS_APP_DB_PASSWORD" \
  -v backup_pw="$SHOPJOBS_BACKUP_DB_PASSWORD" -v readonly_pw="$SHOPJOBS_READONLY_DB_PASSWORD" \
  -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE shopjobs_app NOLOGIN;
CREATE ROLE shopjobs_backup NOLOGIN;
CREATE ROLE shopjobs_readonly NOLOGIN;
-- the console's pages read as the read-only role (SET LOCAL ROLE): no privilege added
GRANT shopjobs_readonly TO shopjobs_app;
CREATE ROLE shopjobs_owner LOGIN PASSWORD :'owner_pw';
CREATE ROLE shop_worker LOGIN PASSWORD :'app_pw' IN ROLE shopjobs_app;
CREATE ROLE shop_backup LOGIN CREATEDB PASSWORD :'backup_pw' IN ROLE shopjobs_backup;
CREATE ROLE shop_reports LOGIN PASSWORD :'readonly_pw' IN ROLE shopjobs_readonly;
ALTER DATABASE :"db" OWNER TO shopjobs_owner;
-- timeouts of the logins that do not set their own at connect (shop/db_logins.py ROLE_SETTINGS):
-- the application sets statement/lock/idle timeouts through libpq (SHOPJOBS_DB_*_MS), pg_dump
-- its own (none)
ALTER ROLE shopjobs_owner SET lock_timeout = '10s';
ALTER ROLE shop_reports SET statement_timeout = '300s';
ALTER ROLE shop_reports SET idle_in_transaction_session_timeout = '60s';
SQL
