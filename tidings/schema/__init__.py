"""Request schemas: plain typed structs, one module per channel object, no HTTP in here."""
