"""Jobs, sensors and schedules: how the assets are driven."""
