"""Background workers that move accepted messages to a final status."""
