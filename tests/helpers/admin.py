"""Helpers for admin tests: a logged-in staff client with exactly the permissions given."""

from __future__ import annotations

from django.contrib.auth.models import Permission, User
from django.test import Client


def staff_client(*codenames: str, username: str = "staff") -> Client:
    """A test client logged in as a staff user holding only the ``codenames`` permissions."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client
