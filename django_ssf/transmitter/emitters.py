"""Opt-in emitters for Django's own auth signals (to be written)."""


def connect_auth_signal_emitters() -> None:
    return None
