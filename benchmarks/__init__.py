"""Benchmarks: ``python -m benchmarks`` runs them all (``--quick`` for a smoke run)."""
