"""``ensure_user <username> --email E --password P [--superuser]``: create or reset a user.

Idempotent, so the demo can run it on every start; prints the user as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create a user, or reset its email, password and flags if it exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument(
            "--superuser", action="store_true", help="make the user staff and superuser"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model._default_manager.get_or_create(
            **{user_model.USERNAME_FIELD: options["username"]}
        )
        user.email = options["email"]
        user.is_active = True
        user.is_staff = user.is_superuser = bool(options["superuser"])
        user.set_password(options["password"])
        user.save()
        self.stdout.write(
            json.dumps(
                {
                    "id": user.pk,
                    "username": user.get_username(),
                    "email": user.email,
                    "superuser": user.is_superuser,
                    "created": created,
                }
            )
        )
