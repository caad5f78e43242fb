"""Event-type registry (to be written)."""
