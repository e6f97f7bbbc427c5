"""Retention and erasure of stored videos; every decision stays."""
