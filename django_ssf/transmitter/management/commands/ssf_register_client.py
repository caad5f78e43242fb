"""``manage.py ssf_register_client <name> [--scope "ssf.read ssf.manage"]``.

Creates a receiver's OAuth client (confidential, client-credentials grant) and prints
JSON with ``client_id``, ``client_secret``, ``token_endpoint`` and ``scope``, so that
onboarding a receiver can be scripted::

    manage.py ssf_register_client "Acme SIEM" --scope ssf.read

The secret is printed once: django-oauth-toolkit stores only its hash.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from ....conf import ssf_settings
from ....core.db import write_atomic
from ...discovery import token_endpoint_url
from ...models import ReceiverClient


def register_client(name: str, scope: str | None = None) -> dict[str, str]:
    """Create a receiver client; returns the JSON-ready credentials (secret in clear)."""
    if not name.strip():
        raise ValueError("the receiver's name must not be empty (e.g. \"Acme SaaS\")")
    allowed = {ssf_settings.TRANSMITTER_READ_SCOPE, ssf_settings.TRANSMITTER_MANAGE_SCOPE}
    if scope is None:
        scope = f"{ssf_settings.TRANSMITTER_READ_SCOPE} {ssf_settings.TRANSMITTER_MANAGE_SCOPE}"
    scopes = scope.split()
    unknown = sorted(set(scopes) - allowed)
    if not scopes or unknown:
        raise ValueError(
            f"--scope must name {' and/or '.join(sorted(allowed))}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    scope_str = " ".join(dict.fromkeys(scopes))
    Application = get_application_model()
    secret = generate_client_secret()
    with write_atomic():
        app = Application(
            name=name,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            client_secret=secret,  # hashed on save; the clear value is kept here only
        )
        app.save()
        ReceiverClient.objects.create(application=app, allowed_scopes=scope_str)
    return {
        "client_id": app.client_id,
        "client_secret": secret,
        "token_endpoint": token_endpoint_url(),
        "scope": scope_str,
    }


class Command(BaseCommand):
    help = "Register an SSF receiver: an OAuth client (client credentials) with SSF scopes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A human-readable name for the receiver.")
        parser.add_argument(
            "--scope",
            default=None,
            help='Space-separated scopes the client may obtain (default "ssf.read ssf.manage").',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            credentials = register_client(options["name"], options["scope"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(credentials, indent=2))
