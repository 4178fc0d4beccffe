-- The two keys' index sizes (bytes).
SELECT c.relname, pg_relation_size(c.oid)
FROM pg_class AS c
WHERE c.relnamespace = 'lab_key'::regnamespace AND c.relname IN ('t_full_pkey', 't_hash_pkey')
ORDER BY c.relname;
