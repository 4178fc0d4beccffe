#!/bin/sh
# billing-postgres, first start only (the postgres image runs /docker-entrypoint-initdb.d on an empty
# volume): the billing database's group roles (the defaults of [rafay_billing] db_owner_role,
# db_writer_role, db_reader_role) and the logins of two connections:
#   billing_postgres         -> billing_writer, a member of rafay_billing_writer (every DAG task)
#   billing_postgres_reader  -> billing_reader, a member of rafay_billing_reader (Billing view, exports)
# and the tenant-api service's: billing_tenant_api, a member of rafay_billing_tenant_api.
# billing_postgres_owner logs in as POSTGRES_USER: migrate_schema acts as rafay_billing_owner, which
# then owns the schema. The migrations create the group roles themselves when absent; they are made
# here so the logins can join them before the first migration.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v writer_password="$BILLING_DB_WRITER_PASSWORD" -v reader_password="$BILLING_DB_READER_PASSWORD" \
    -v tenant_api_password="$BILLING_DB_TENANT_API_PASSWORD" <<'SQL'
CREATE ROLE rafay_billing_owner NOLOGIN;
CREATE ROLE rafay_billing_writer NOLOGIN;
CREATE ROLE rafay_billing_reader NOLOGIN;
CREATE ROLE rafay_billing_tenant_api NOLOGIN;
CREATE ROLE billing_writer LOGIN PASSWORD :'writer_password' IN ROLE rafay_billing_writer;
CREATE ROLE billing_reader LOGIN PASSWORD :'reader_password' IN ROLE rafay_billing_reader;
CREATE ROLE billing_tenant_api LOGIN PASSWORD :'tenant_api_password' IN ROLE rafay_billing_tenant_api;
SQL
