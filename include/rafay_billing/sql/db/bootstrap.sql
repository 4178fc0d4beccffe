-- What migrate() needs before it can read which migrations are applied. Created only when absent
-- (CREATE ... IF NOT EXISTS would still ask for the CREATE privilege on the database).
DO $$
BEGIN
    IF to_regnamespace('billing') IS NULL THEN
        CREATE SCHEMA billing;
    END IF;
    IF to_regclass('billing.schema_migrations') IS NULL THEN
        CREATE TABLE billing.schema_migrations (
            version     integer     PRIMARY KEY,
            name        text        NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now()
        );
    END IF;
END
$$;
