-- The four group roles (NOLOGIN), created only when absent: roles are cluster-wide, and creating one
-- needs CREATEROLE (or a superuser). Without it an administrator creates them once by hand (README).
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY[current_setting('rafay_billing.owner_role'),
                                current_setting('rafay_billing.writer_role'),
                                current_setting('rafay_billing.reader_role'),
                                current_setting('rafay_billing.tenant_api_role')]
    LOOP
        CONTINUE WHEN to_regrole(quote_ident(name)) IS NOT NULL;
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', name);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;  -- another database's migrate made it
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'database role % does not exist and % may not create it', name, current_user
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = format('an administrator runs CREATE ROLE %I NOLOGIN (or grants %I CREATEROLE), '
                                        'then migrate again', name, current_user);
        END;
    END LOOP;
END
$$;

-- The migrating user acts as the owner role: it becomes a member when it is not one yet (possible for
-- the role's creator or a CREATEROLE user; a single-login deployment gets here).
DO $$
DECLARE
    owner_role text := current_setting('rafay_billing.owner_role');
BEGIN
    IF NOT pg_has_role(current_user, owner_role, 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT %I TO %I', owner_role, current_user);
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
            RAISE EXCEPTION '% is not a member of the billing owner role % and may not make itself one',
                current_user, owner_role
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('migrate with the billing_postgres_owner connection (a member of %I), '
                                    'or have an administrator run GRANT %I TO %I', owner_role, owner_role,
                                    current_user);
        END;
    END IF;
END
$$;

-- The migrations say CREATE SCHEMA IF NOT EXISTS billing, which asks for CREATE on the database even
-- when the schema exists: the owner role gets it (from the database's owner, or a superuser).
DO $$
DECLARE
    owner_role text := current_setting('rafay_billing.owner_role');
BEGIN
    IF NOT has_database_privilege(owner_role, current_database(), 'CREATE') THEN
        BEGIN
            EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', current_database(), owner_role);
        EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
            RAISE EXCEPTION 'the billing owner role % may not create schemas in database %, and % may not grant it',
                owner_role, current_database(), current_user
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('the database''s owner runs GRANT CREATE ON DATABASE %I TO %I',
                                    current_database(), owner_role);
        END;
    END IF;
END
$$;
