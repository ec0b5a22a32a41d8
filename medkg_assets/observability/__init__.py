"""Operator-facing signals: Prometheus metrics and CloudEvents (no Dagster imports)."""
