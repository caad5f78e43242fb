"""Classes and functions the tests name in settings by import string.

They live here, not in a test module, so that no setting makes Django import a test module.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from django_ssf.core import jose
from django_ssf.keys import keystore


class ExternalProvider(keystore.KeyProvider):
    """A KMS-like provider: keys live elsewhere, management is not supported here."""

    key = jose.generate_private_key("ES256")

    def signing_key(self) -> keystore.SigningKeyHandle:
        return keystore.SigningKeyHandle(kid="kms-1", alg="ES256", key=self.key)

    def published_jwks(self) -> dict:
        return {"keys": [jose.public_jwk(self.key, kid="kms-1", alg="ES256")]}


EXTERNAL_PROVIDER = "tests.helpers.pluggable.ExternalProvider"


class ServesSSFScopes:
    """A host's scopes backend that offers the SSF scopes to every application."""

    def get_all_scopes(self) -> dict[str, str]:
        return {"ssf.read": "r", "ssf.manage": "m"}

    def get_available_scopes(self, application: Any = None, request: Any = None,
                             *args: Any, **kwargs: Any) -> list[str]:
        return ["ssf.read", "ssf.manage"]

    def get_default_scopes(self, application: Any = None, request: Any = None,
                           *args: Any, **kwargs: Any) -> list[str]:
        return ["ssf.read"]


class NeedsApplicationScopes(ServesSSFScopes):
    """A scopes backend that cannot answer without an application (as some hosts' do)."""

    def get_available_scopes(self, application: Any = None, request: Any = None,
                             *args: Any, **kwargs: Any) -> list[str]:
        raise AttributeError("application is required")


def opaque_subject(user: Any) -> dict[str, str]:
    """``TRANSMITTER_USER_SUBJECT``: an opaque subject from the user's primary key."""
    return {"format": "opaque", "id": f"user-{user.pk}"}


def resolve_everyone_to_alice(subject: dict, transmitter: Any) -> Any:
    """``RECEIVER_SUBJECT_RESOLVER``: every subject is the user ``alice``."""
    return get_user_model().objects.get(username="alice")
