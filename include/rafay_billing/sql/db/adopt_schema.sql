-- The owner role owns the schema and everything in it: a fresh schema (created by the connecting
-- user), and a schema migrated before the roles existed, whose objects belonged to the login that ran it.
DO $$
DECLARE
    owner_role regrole := quote_ident(current_setting('rafay_billing.owner_role'))::regrole;
    obj record;
BEGIN
    IF (SELECT nspowner FROM pg_namespace WHERE nspname = 'billing') <> owner_role THEN
        EXECUTE format('ALTER SCHEMA billing OWNER TO %s', owner_role);
    END IF;
    -- Tables, views and their sequences, then sequences no table owns (owned ones follow their table).
    FOR obj IN
        SELECT c.relname, c.relkind FROM pg_class AS c
        WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND c.relowner <> owner_role
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER %s billing.%I OWNER TO %s',
                       CASE obj.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                        WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, obj.relname, owner_role);
    END LOOP;
    FOR obj IN
        SELECT c.relname FROM pg_class AS c
        WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind = 'S' AND c.relowner <> owner_role
    LOOP
        EXECUTE format('ALTER SEQUENCE billing.%I OWNER TO %s', obj.relname, owner_role);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure AS sig FROM pg_proc AS p
        WHERE p.pronamespace = 'billing'::regnamespace AND p.proowner <> owner_role
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %s', obj.sig, owner_role);
    END LOOP;
    FOR obj IN
        SELECT s.stxname FROM pg_statistic_ext AS s
        WHERE s.stxnamespace = 'billing'::regnamespace AND s.stxowner <> owner_role
    LOOP
        EXECUTE format('ALTER STATISTICS billing.%I OWNER TO %s', obj.stxname, owner_role);
    END LOOP;
END
$$;
