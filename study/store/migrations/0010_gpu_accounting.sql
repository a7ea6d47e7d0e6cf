-- GPU studies: per seed and per attempt, GPU-seconds (wall time × GPUs the slot held, measured
-- by the runner) and peak GPU memory (reported by the method process). NULL on CPU runs, so the
-- charged compute is coalesce(gpu_seconds, cpu_seconds).
ALTER TABLE attempts ADD COLUMN gpu_seconds DOUBLE;
ALTER TABLE attempts ADD COLUMN peak_gpu_mb DOUBLE;
ALTER TABLE seed_results ADD COLUMN gpu_seconds DOUBLE;
ALTER TABLE seed_results ADD COLUMN peak_gpu_mb DOUBLE;
