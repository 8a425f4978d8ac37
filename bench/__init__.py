"""Benchmarks. Run all with ``./run.sh bench`` or one with ``./run.sh bench NAME``."""
