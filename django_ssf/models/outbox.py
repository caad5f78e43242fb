"""Owned by the helper implementing this part; see the module docstring once written."""

__all__: list[str] = []
