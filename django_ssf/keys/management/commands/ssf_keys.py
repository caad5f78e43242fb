"""``manage.py ssf_keys``: list, generate, rotate and retire django-ssf keys.

Examples::

    manage.py ssf_keys list --json
    manage.py ssf_keys generate --alg ES256          # new "next" signing key
    manage.py ssf_keys generate --encryption --alg ECDH-ES+A256KW
    manage.py ssf_keys rotate
    manage.py ssf_keys retire <kid> [--force]      # or --kid=<kid> if it starts with "-"
    manage.py ssf_keys retire --drained               # every retiring key with nothing pending
    manage.py ssf_keys reencrypt                      # after rotating KEYS_ENCRYPTION_SECRET
    manage.py ssf_keys rotate-client [--alg ES256]    # new receiver client key (private_key_jwt)
    manage.py ssf_keys retire-client <kid>            # unpublish a retiring client key
                                                      # (or --kid=<kid>)
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....core import jose
from ....core.errors import SSFKeyError
from ... import client_keys, keystore


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def signing_key_dict(row: Any) -> dict:
    return {
        "kid": row.kid,
        "use": "sig",
        "alg": row.alg,
        "state": row.state,
        "created_at": _iso(row.created_at),
        "activated_at": _iso(row.activated_at),
        "retired_at": _iso(row.retired_at),
        "undelivered": keystore.undelivered_count(row.kid) if row.is_published else 0,
    }


def encryption_key_dict(row: Any) -> dict:
    return {
        "kid": row.kid,
        "use": "enc",
        "alg": row.alg,
        "state": "active" if row.active else "inactive",
        "created_at": _iso(row.created_at),
    }


def client_key_dict(row: Any) -> dict:
    return {
        "kid": row.kid,
        "use": "client",
        "alg": row.alg,
        "state": row.state,
        "created_at": _iso(row.created_at),
        "retired_at": _iso(row.retired_at),
    }


def _kid_arguments(parser: CommandParser) -> None:
    """The key id of ``retire`` and ``retire-client``: positional, or ``--kid=KID`` for a
    thumbprint kid that starts with '-' (argparse would read it as an option)."""
    parser.add_argument("kid", nargs="?", help="Key id to retire.")
    parser.add_argument(
        "--kid",
        dest="kid_option",
        metavar="KID",
        help="Key id to retire (use --kid=KID for a kid that starts with '-').",
    )


class Command(BaseCommand):
    help = "List, generate, rotate and retire django-ssf signing and encryption keys."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        p = sub.add_parser("list", help="List signing and encryption keys.")
        p.add_argument("--json", action="store_true", help="Output JSON.")

        p = sub.add_parser("rotate", help="Promote the next key to active and create a new next.")
        p.add_argument("--json", action="store_true", help="Output JSON.")

        p = sub.add_parser("retire", help="Unpublish a retiring key.")
        _kid_arguments(p)
        p.add_argument(
            "--force", action="store_true", help="Retire even if SETs signed with it are pending."
        )
        p.add_argument(
            "--drained",
            action="store_true",
            help="Retire every retiring key whose SETs have all been delivered.",
        )
        p.add_argument("--json", action="store_true", help="Output JSON.")

        p = sub.add_parser(
            "rotate-client",
            help="New receiver client key (private_key_jwt); the old one stays published.",
        )
        p.add_argument(
            "--alg",
            help=f"One of {', '.join(jose.SIGNING_ALGORITHMS)} "
            "(default SSF RECEIVER_CLIENT_KEY_ALG).",
        )
        p.add_argument("--json", action="store_true", help="Output JSON.")

        p = sub.add_parser("retire-client", help="Unpublish a retiring receiver client key.")
        _kid_arguments(p)
        p.add_argument("--json", action="store_true", help="Output JSON.")

        p = sub.add_parser(
            "reencrypt",
            help="Re-encrypt stored private keys and secrets under the newest at-rest secret.",
        )
        p.add_argument("--json", action="store_true", help="Output JSON.")

        p = sub.add_parser("generate", help="Generate a new key (a 'next' signing key by default).")
        p.add_argument(
            "--alg",
            help=(
                f"Signing: {', '.join(jose.SIGNING_ALGORITHMS)} "
                "(default SSF KEYS_SIGNING_ALGORITHM). "
                f"Encryption: {', '.join(jose.ENCRYPTION_ALGORITHMS)} (default RSA-OAEP-256)."
            ),
        )
        p.add_argument(
            "--encryption", action="store_true", help="Generate a receiver JWE decryption key."
        )
        p.add_argument("--json", action="store_true", help="Output JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            result = getattr(self, f"_{action.replace('-', '_')}")(options)
        except SSFKeyError as exc:
            raise CommandError(str(exc)) from exc
        if options.get("json"):
            self.stdout.write(json.dumps(result, indent=2))

    def _say(self, options: dict, message: str) -> None:
        if not options.get("json"):
            self.stdout.write(message)

    # ---- actions -------------------------------------------------------------------------
    def _list(self, options: dict) -> list[dict]:
        from ...models import ClientKey, EncryptionKey, SigningKey

        rows = [signing_key_dict(r) for r in SigningKey.objects.all()]
        rows += [encryption_key_dict(r) for r in EncryptionKey.objects.all()]
        rows += [client_key_dict(r) for r in ClientKey.objects.all()]
        if not options.get("json"):
            if not rows:
                self.stdout.write("No keys yet (one is generated on first use).")
            for r in rows:
                extra = f"  undelivered={r['undelivered']}" if r.get("undelivered") else ""
                self.stdout.write(
                    f"{r['use']}  {r['kid']}  {r['alg']:<15} {r['state']:<9} "
                    f"created {r['created_at']}{extra}"
                )
        return rows

    def _rotate(self, options: dict) -> dict:
        row = keystore.rotate()
        self._say(options, self.style.SUCCESS(f"Active signing key is now {row.kid} ({row.alg})."))
        return signing_key_dict(row)

    def _retire(self, options: dict) -> dict | list[str]:
        kid = options["kid"] or options["kid_option"]
        if options["kid"] and options["kid_option"]:
            raise CommandError("give the kid once, either positionally or with --kid")
        if options["drained"]:
            if kid:
                raise CommandError("give either a kid or --drained, not both")
            kids = keystore.retire_drained()
            self._say(options, f"Retired {len(kids)} key(s): {', '.join(kids) or '-'}")
            return kids
        if not kid:
            raise CommandError("retire needs a kid (or --drained)")
        row = keystore.retire(kid, force=options["force"])
        self._say(options, self.style.SUCCESS(f"Key {row.kid} is retired."))
        return signing_key_dict(row)

    def _reencrypt(self, options: dict) -> dict:
        # The stored secrets are always this site's own; private keys only when the key
        # provider keeps them in the database (an external provider's keys are not ours).
        secrets = keystore.reencrypt_secrets()
        count = keystore.reencrypt() if keystore.provider_stores_keys() else 0
        self._say(options, self.style.SUCCESS(
            f"Re-encrypted {count} private key(s) and {secrets} stored secret(s)."))
        return {"reencrypted": count, "reencrypted_secrets": secrets}

    def _generate(self, options: dict) -> dict:
        if options["encryption"]:
            row = keystore.generate_encryption_key(options["alg"] or "RSA-OAEP-256")
            self._say(options, self.style.SUCCESS(f"Generated encryption key {row.kid}."))
            return {**encryption_key_dict(row), "public_jwk": row.public_jwk}
        row = keystore.generate_signing_key(options["alg"])
        self._say(
            options,
            self.style.SUCCESS(
                f"Generated next signing key {row.kid} ({row.alg}); it is published now and "
                "becomes active on the next rotation."
            ),
        )
        return signing_key_dict(row)

    def _rotate_client(self, options: dict) -> dict:
        row = client_keys.rotate_client_key(options["alg"])
        self._say(
            options,
            self.style.SUCCESS(
                f"Active client key is now {row.kid} ({row.alg}); the previous one stays published "
                "until retire-client."
            ),
        )
        return client_key_dict(row)

    def _retire_client(self, options: dict) -> dict:
        # A kid is an RFC 7638 thumbprint (base64url): one in 64 starts with "-", which
        # argparse would take for an option, hence --kid=KID as well.
        if options["kid"] and options["kid_option"]:
            raise CommandError("give the kid once, either positionally or with --kid")
        kid = options["kid"] or options["kid_option"]
        if not kid:
            raise CommandError("retire-client needs a kid")
        row = client_keys.retire_client_key(kid)
        self._say(options, self.style.SUCCESS(f"Client key {row.kid} is retired."))
        return client_key_dict(row)
