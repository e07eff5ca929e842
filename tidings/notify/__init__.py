"""Delivery notifications: the documented payload, and the outbox sender that never loses one."""
