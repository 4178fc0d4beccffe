-- Benchmark only: start a measurement without a pending checkpoint.
CHECKPOINT;
