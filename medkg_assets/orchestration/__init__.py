"""Dagster-side vocabulary shared by assets, automation and the CLI: partitions, graph names,
check status lookups. Built from settings when the definitions are built, never at import."""
