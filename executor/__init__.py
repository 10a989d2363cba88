"""isobench: a per-commit sandbox executor for benchmarking AI coding agents on perf work."""

__version__ = "0.1.0"
