-- Benchmark only: the server settings that decide how fast rating runs, printed beside its figures
-- (shared_buffers and wal_buffers in 8 kB pages, work_mem in kB, max_wal_size in MB, as pg_settings has them).
SELECT name, setting, coalesce(unit, '') AS unit
FROM pg_settings
WHERE name IN ('shared_buffers', 'work_mem', 'maintenance_work_mem', 'jit', 'max_parallel_workers_per_gather',
               'synchronous_commit', 'fsync', 'full_page_writes', 'wal_buffers', 'max_wal_size',
               'checkpoint_timeout', 'autovacuum', 'effective_cache_size', 'random_page_cost', 'wal_level')
ORDER BY name;
