"""Smart links: per-destination short links that redirect by the device's OS and expire."""
