"""Admin for this area (being written)."""
