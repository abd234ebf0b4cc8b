"""The notifier benchmark: ``python benchmarks/run.py`` (see docs/performance.md)."""
