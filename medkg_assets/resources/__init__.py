"""One Dagster resource per outside system; they hide library quirks from the assets."""
