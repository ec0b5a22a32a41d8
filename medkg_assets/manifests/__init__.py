"""Pure manifest schemas: the rerank manifest and processing_summary.json (v4.1, v4.0 reader)."""
