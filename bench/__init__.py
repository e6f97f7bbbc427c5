"""Benchmarks: figures printed as JSON, never asserted as timings in tests."""
