"""System checks of the receiver app (registered when it is installed).

Ids E020-E029 and W005 are the receiver's. Configuration checks never touch the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..conf import ssf_settings
from ..core import jose
from ..keys.checks import (
    import_string_messages,
    keys_app_messages,
    rate_limit_messages,
    settings_readable,
)


def _accepted_algorithm_messages() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    accepted = ssf_settings.RECEIVER_ACCEPTED_ALGORITHMS
    if isinstance(accepted, str) or not isinstance(accepted, Sequence):
        messages.append(
            Error(
                "SSF['RECEIVER_ACCEPTED_ALGORITHMS'] must be a list of strings.",
                id="django_ssf.E006",
            )
        )
    else:
        bad = [
            a
            for a in accepted
            if not isinstance(a, str) or a.lower() == "none" or a.upper().startswith("HS")
        ]
        unknown = [a for a in accepted if a not in bad and a not in jose.SIGNING_ALGORITHMS]
        if bad:
            messages.append(
                Error(
                    f"SSF['RECEIVER_ACCEPTED_ALGORITHMS'] contains {bad!r}: unsigned and "
                    "HMAC SETs are never accepted.",
                    hint=f"Use a subset of {', '.join(jose.SIGNING_ALGORITHMS)}.",
                    id="django_ssf.E006",
                )
            )
        if unknown:
            messages.append(
                Error(
                    f"SSF['RECEIVER_ACCEPTED_ALGORITHMS'] contains unsupported {unknown!r}.",
                    hint=f"Use a subset of {', '.join(jose.SIGNING_ALGORITHMS)}.",
                    id="django_ssf.E006",
                )
            )
        if not accepted:
            messages.append(
                Error("SSF['RECEIVER_ACCEPTED_ALGORITHMS'] is empty.", id="django_ssf.E006")
            )
    return messages


@register(Tags.security)
def check_receiver_settings(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Receiver configuration that would otherwise fail on the first push or event."""
    if settings_readable():
        return []  # reported by the shared checks
    messages = keys_app_messages("django_ssf.receiver", "django_ssf.E025")
    messages += _accepted_algorithm_messages()
    messages += rate_limit_messages(
        "RECEIVER_PUSH_RATE_LIMIT",
        invalid_id="django_ssf.E020",
        cache_id="django_ssf.E021",
        off_hint="or set SSF['RECEIVER_PUSH_RATE_LIMIT'] = None to turn the push rate "
        "limit off.",
    )
    messages += import_string_messages("RECEIVER_SUBJECT_RESOLVER", "django_ssf.E022")
    members = ssf_settings.RECEIVER_PROCESSABLE_SUBJECT_MEMBERS
    if isinstance(members, str) or not isinstance(members, Sequence) or not all(
        isinstance(m, str) for m in members
    ):
        messages.append(Error(
            "SSF['RECEIVER_PROCESSABLE_SUBJECT_MEMBERS'] must be a list of complex-subject member "
            "names (strings).",
            id="django_ssf.E024",
        ))
    if not (ssf_settings.BASE_URL or ssf_settings.TRANSMITTER_ISSUER):
        messages.append(Warning(
            "SSF['BASE_URL'] is not set: the receiver cannot tell a transmitter the absolute "
            "URL of its push endpoint.",
            hint="Set SSF['BASE_URL'] to this site's public https origin, e.g. "
            "https://app.example.com (only polling works without it).",
            id="django_ssf.W005",
        ))
    return messages
