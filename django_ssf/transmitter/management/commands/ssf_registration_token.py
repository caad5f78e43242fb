"""``ssf_registration_token``: initial access tokens and approvals for self-service receivers.

* ``create [--description D] [--uses N] [--expires-in SECONDS]`` prints a new initial
  access token (once: only its hash is stored) for a receiver to register with (RFC 7591 §3).
* ``list`` shows tokens and registrations; ``revoke ID`` revokes a token;
  ``approve CLIENT_ID`` grants a pending registration the scopes it asked for.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...models import ClientRegistration, InitialAccessToken
from ...registration import approve, issue_initial_access_token


class Command(BaseCommand):
    help = "Issue, list and revoke initial access tokens; approve registered receiver clients."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="issue an initial access token (printed once)")
        create.add_argument("--description", default="")
        create.add_argument("--uses", type=int, default=1, help="registrations allowed (1)")
        create.add_argument("--expires-in", type=int, default=None, metavar="SECONDS")
        sub.add_parser("list", help="list tokens and registrations")
        revoke = sub.add_parser("revoke", help="revoke an initial access token")
        revoke.add_argument("id", type=int)
        approve_cmd = sub.add_parser("approve", help="approve a pending registration")
        approve_cmd.add_argument("client_id")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            if options["uses"] < 1:
                raise CommandError("--uses must be at least 1")
            row, token = issue_initial_access_token(
                description=options["description"],
                max_uses=options["uses"],
                expires_in=options["expires_in"],
            )
            self.stderr.write(
                f"initial access token #{row.pk} (shown once; give it to the receiver):"
            )
            self.stdout.write(token)
        elif action == "list":
            for token_row in InitialAccessToken.objects.all():
                state = "usable" if token_row.usable else "unusable"
                self.stdout.write(
                    f"token #{token_row.pk} {token_row.description!r} used "
                    f"{token_row.use_count}/{token_row.max_uses} expires "
                    f"{token_row.expires_at or 'never'} ({state})"
                )
            for reg in ClientRegistration.objects.select_related("receiver__application"):
                state = "pending" if reg.is_pending else "approved"
                self.stdout.write(
                    f"client {reg.receiver.application.client_id} "
                    f"{reg.metadata.get('client_name', '')!r} {reg.token_endpoint_auth_method} "
                    f"({state})"
                )
        elif action == "revoke":
            if not InitialAccessToken.objects.filter(pk=options["id"]).update(revoked=True):
                raise CommandError(f"no initial access token #{options['id']}")
            self.stdout.write(f"revoked token #{options['id']}")
        elif action == "approve":
            pending = ClientRegistration.objects.filter(
                receiver__application__client_id=options["client_id"]
            ).first()
            if pending is None:
                raise CommandError(f"no registration for client {options['client_id']!r}")
            approve(pending)
            self.stdout.write(f"approved {options['client_id']} ({pending.requested_scope})")
