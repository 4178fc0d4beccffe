-- Before serving: what the connecting user may do beyond the tenant API role's grants (any write on a
-- billing table, or reading a table the API does not serve). A row means the login is too powerful.
SELECT current_user AS login, c.relname,
       array_to_string(array_remove(ARRAY[
           CASE WHEN has_table_privilege(c.oid, 'SELECT')
                     AND c.relname NOT IN ('invoices', 'invoice_lines', 'charge_line_items', 'currencies',
                                           'api_tokens') THEN 'SELECT' END,
           CASE WHEN has_table_privilege(c.oid, 'INSERT') THEN 'INSERT' END,
           CASE WHEN has_table_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END,
           CASE WHEN has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END,
           CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN 'TRUNCATE' END], NULL), ', ') AS privileges
FROM pg_class AS c
WHERE c.relnamespace = 'billing'::regnamespace AND c.relkind IN ('r', 'p')
  AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
       OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE')
       OR (has_table_privilege(c.oid, 'SELECT')
           AND c.relname NOT IN ('invoices', 'invoice_lines', 'charge_line_items', 'currencies', 'api_tokens')))
ORDER BY c.relname;
