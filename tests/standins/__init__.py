"""Stand-ins of the outside services Tidings talks to, speaking their wire formats on loopback."""
