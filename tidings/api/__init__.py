"""The HTTP layer: parse, authenticate, call intake or the store, render the documented bodies."""
