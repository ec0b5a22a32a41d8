"""Model backends behind the encoder resources: plain Python, no Dagster, easy to test."""
