"""Safe profile rollout: which namespaces take a candidate profile, and which profile is live."""
