"""The benchmark suite: `make bench` (bench/run.py, then bench/report.py -> BENCHMARKS.md)."""
