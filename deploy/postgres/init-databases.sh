#!/bin/sh
# First start of the compose PostgreSQL: one database per service, each owned by its own login
# role with no other rights (no superuser, no CREATEDB/CREATEROLE, no CONNECT on the other
# service's database). Passwords come from the environment and reach psql as variables, so they
# are quoted by psql itself and never appear in a process list.
set -eu

psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v auth_password="$AUTH_DB_PASSWORD" \
  -v facturation_password="$FACTURATION_DB_PASSWORD" <<'SQL'
CREATE ROLE auth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'auth_password';
CREATE DATABASE auth OWNER auth;
REVOKE ALL ON DATABASE auth FROM PUBLIC;

CREATE ROLE facturation LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'facturation_password';
CREATE DATABASE facturation OWNER facturation;
REVOKE ALL ON DATABASE facturation FROM PUBLIC;
SQL
