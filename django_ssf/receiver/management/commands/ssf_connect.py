"""``ssf_connect``: add a transmitter by its issuer (or configuration URL), create a stream.

Run again for a transmitter we already have a stream with, it updates that stream (new
credentials, events, description, push secret) instead of creating a second one; a second
stream needs ``--new-stream``. A failed run leaves the database as it was.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...client import ControlPlaneError, connect
from ._common import dump


class Command(BaseCommand):
    help = (
        "Connect this receiver to an SSF transmitter: discovery, credentials, stream creation. "
        "Prints the local stream as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("issuer", help="the transmitter's issuer or configuration URL")
        parser.add_argument("--delivery", choices=["push", "poll"], default="push")
        parser.add_argument("--token", help="a static bearer token for the control plane")
        parser.add_argument("--client-id", help="OAuth client id (client credentials grant)")
        parser.add_argument("--client-secret", help="OAuth client secret")
        # ---- self-service onboarding (RFC 7591 + RFC 7523), see receiver/registration.py --
        parser.add_argument(
            "--register", action="store_true",
            help="register our own OAuth client at the transmitter (RFC 7591) and authenticate "
            "with our client key (private_key_jwt): no client secret on either side")
        parser.add_argument("--initial-access-token", metavar="T",
                            help="with --register: the token the transmitter's operator issued")
        parser.add_argument("--token-endpoint",
                            help="OAuth token endpoint (default: found via RFC 9728 / RFC 8414)")
        parser.add_argument("--scope",
                            help="OAuth scope to request (default: discovered, or "
                            "'ssf.read ssf.manage')")
        parser.add_argument("--events", nargs="+", metavar="URI",
                            help="event types to request (default: every type both this "
                            "receiver and the transmitter support)")
        parser.add_argument(
            "--new-stream", action="store_true",
            help="create another stream even though one exists at this transmitter (every "
            "event is then delivered once per stream)")
        parser.add_argument(
            "--stream", type=int, metavar="ID",
            help="the local id of the existing stream to update (when there are several)")
        parser.add_argument(
            "--poll-url",
            help="legacy transmitters: the poll URL to use when the stream configuration "
            "carries none")
        parser.add_argument("--description", default="", help="stream description")
        parser.add_argument("--legacy", action="store_true",
                            help="accept legacy (draft / Google RISC) shapes from this transmitter")
        parser.add_argument(
            "--subject-issuer", action="append", default=None, metavar="ISS",
            help="another iss of iss_sub subjects this transmitter may address (repeatable; "
            "its own issuer always counts)")
        parser.add_argument(
            "--trust-own-subjects", action="store_true",
            help="let this transmitter address our users as iss_sub with OUR issuer and their "
            "primary key (only for a transmitter that holds our user ids)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["register"]:
            self._register(options)
            return
        if options["initial_access_token"]:
            raise CommandError("--initial-access-token needs --register")
        if options["token"] and options["client_id"]:
            raise CommandError("give either --token or --client-id/--client-secret, not both")
        if not (options["token"] or options["client_id"]):
            raise CommandError(
                "no credentials: give --client-id and --client-secret (the OAuth client the "
                "transmitter registered for you), or --token for a static bearer token"
            )
        if options["client_id"] and not options["client_secret"]:
            raise CommandError("--client-id needs --client-secret")
        try:
            stream = connect(
                options["issuer"],
                delivery=options["delivery"],
                token=options["token"],
                client_id=options["client_id"],
                client_secret=options["client_secret"],
                token_endpoint=options["token_endpoint"],
                scope=options["scope"],
                events=options["events"],
                description=options["description"],
                legacy=options["legacy"],
                subject_issuers=options["subject_issuer"],
                trust_own_issuer_subjects=options["trust_own_subjects"] or None,
                poll_url=options["poll_url"],
                new_stream=options["new_stream"],
                stream=options["stream"],
            )
        except ControlPlaneError as exc:
            raise CommandError(str(exc)) from exc
        dump(self, stream.as_dict())

    def _register(self, options: dict[str, Any]) -> None:
        """``--register``: RFC 7591 registration, then a normal connect with private_key_jwt."""
        from ...registration import register_and_connect

        if options["token"] or options["client_id"] or options["client_secret"]:
            raise CommandError("--register obtains its own client: drop --token/--client-*")
        try:
            stream = register_and_connect(
                options["issuer"],
                initial_access_token=options["initial_access_token"],
                delivery=options["delivery"],
                events=options["events"],
                description=options["description"],
                legacy=options["legacy"],
                subject_issuers=options["subject_issuer"],
                trust_own_issuer_subjects=options["trust_own_subjects"] or None,
            )
        except ControlPlaneError as exc:
            raise CommandError(str(exc)) from exc
        dump(self, stream.as_dict())
