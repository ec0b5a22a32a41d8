"""medkg-assets: Dagster assets that turn medical document collections into search-ready indexes."""
