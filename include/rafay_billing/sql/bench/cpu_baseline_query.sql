-- Benchmark only: the fixed statement of the CPU baseline (see bench/cpu_baseline.sql).
SELECT sum(round(g::numeric * 1.07, 2)) FROM generate_series(1, 2000000) AS g;
