"""SMPP 3.4 and SMS encoding, free of Tidings concepts."""
