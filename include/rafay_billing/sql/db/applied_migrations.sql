-- Migrations already applied.
SELECT version, name FROM billing.schema_migrations ORDER BY version;
