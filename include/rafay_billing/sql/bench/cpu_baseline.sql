-- Benchmark only: a fixed single-core PostgreSQL workload (NUMERIC arithmetic over 2,000,000 generated
-- rows, no table, no I/O, no parallel workers, no JIT), timed beside rating so that rating's time can be
-- read as a multiple of what this machine does per core at that moment.
SELECT set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true);
