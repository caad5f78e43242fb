"""A host's handler module, found by convention (never imported by the tests)."""

from django_ssf.receiver.handlers import on_event

seen: list[str] = []


@on_event("caep.session-revoked")
def remember(event) -> None:
    seen.append(event.jti)
