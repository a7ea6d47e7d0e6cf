"""Speed figures, measured on the machine at hand and written to BENCHMARKS.md."""
