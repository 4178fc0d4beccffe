-- Before migrating: whether the schema exists, whether the configured roles are set up in it already
-- (each exists, the tenant API's role too, the owner owns the schema and each of its relations, the writer and the reader may read
-- every table, every table refuses TRUNCATE), and whether the connecting user may act as the owner.
-- A user that may not finds nothing to do when nothing is pending and everything is in place.
WITH r AS (
    SELECT to_regrole(quote_ident(%(owner)s)) AS owner, to_regrole(quote_ident(%(writer)s)) AS writer,
           to_regrole(quote_ident(%(reader)s)) AS reader, to_regrole(quote_ident(%(tenant_api)s)) AS tenant_api,
           to_regnamespace('billing') AS schema
)
SELECT to_regclass('billing.schema_migrations') IS NOT NULL AS schema_ready,
       coalesce(r.owner IS NOT NULL AND r.writer IS NOT NULL AND r.reader IS NOT NULL AND r.tenant_api IS NOT NULL
           AND (SELECT n.nspowner = r.owner FROM pg_namespace AS n WHERE n.oid = r.schema)
           AND NOT EXISTS (
               SELECT 1 FROM pg_class AS c
               WHERE c.relnamespace = r.schema AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
                 AND (c.relowner <> r.owner
                      OR (c.relkind IN ('r', 'p', 'v', 'm')
                          AND NOT (has_table_privilege(r.writer, c.oid, 'SELECT')
                                   AND has_table_privilege(r.reader, c.oid, 'SELECT')))
                      OR (c.relkind IN ('r', 'p') AND NOT EXISTS (
                          SELECT 1 FROM pg_trigger AS g
                          WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND (g.tgtype::integer & 34) = 34)))),
           false) AS roles_in_place,
       coalesce(pg_has_role(current_user, r.owner, 'MEMBER'), false) AS can_own
FROM r;
