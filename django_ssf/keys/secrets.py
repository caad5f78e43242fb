"""At-rest protection of the secrets both roles keep in their tables.

Two kinds of secret are stored:

- secrets this site must *send* again (the receiver's OAuth client secret, static bearer
  token and cached access token; the transmitter's per-stream push ``authorization_header``)
  are **encrypted** with the same rotatable mechanism as private keys: Fernet with a key
  derived by HKDF-SHA256 from ``SSF["KEYS_ENCRYPTION_SECRET"]`` (or ``SECRET_KEY``), the first
  secret encrypts, every listed one decrypts. A distinct HKDF ``info`` keeps these tokens
  and private-key tokens apart: one can never be decrypted as the other.
- secrets this site only *compares* (the ``authorization_header`` our push endpoint expects)
  are stored as a SHA-256 digest. The value is 256 random bits, so a fast hash is right: there
  is nothing to guess.

Stored values carry a prefix (``ssfenc1:`` / ``sha256:``), so a value in the old plain
format is recognised, and the data migrations that convert existing rows can run twice.
A database dump alone therefore never lets anyone act as this site towards another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

from ..conf import ssf_settings
from ..core.db import write_atomic
from ..core.errors import SSFKeyError

__all__ = [
    "ENCRYPTED_PREFIX",
    "HASH_PREFIX",
    "EncryptedTextField",
    "convert_stored_values",
    "decrypt_secret",
    "encrypt_secret",
    "encrypted_fields",
    "hash_secret",
    "is_encrypted",
    "is_hashed",
    "multi_fernet",
    "reencrypt_secret",
    "secret_matches",
]

ENCRYPTED_PREFIX = "ssfenc1:"
HASH_PREFIX = "sha256:"
_SECRET_INFO = b"django-ssf stored secret encryption v1"


def at_rest_secrets() -> list[str | bytes]:
    """The configured at-rest secrets, newest first (the first one encrypts)."""
    configured = ssf_settings.KEYS_ENCRYPTION_SECRET
    if configured:
        values = [configured] if isinstance(configured, str | bytes) else list(configured)
    else:
        values = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    values = [v for v in values if v]
    if not values:
        raise SSFKeyError(
            "no secret to encrypt private keys and stored secrets with (set SECRET_KEY)")
    return values


def _fernet_for(secret: str | bytes, info: bytes) -> Fernet:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)
    return Fernet(base64.urlsafe_b64encode(derived))


def multi_fernet(info: bytes) -> MultiFernet:
    """Fernet over every at-rest secret, for the HKDF context ``info``."""
    return MultiFernet([_fernet_for(s, info) for s in at_rest_secrets()])


def is_encrypted(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(ENCRYPTED_PREFIX)


def is_hashed(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(HASH_PREFIX)


def encrypt_secret(value: str) -> str:
    """The stored form of ``value`` (empty stays empty; already encrypted stays as is)."""
    if not value or is_encrypted(value):
        return value
    token = multi_fernet(_SECRET_INFO).encrypt(value.encode("utf-8"))
    return ENCRYPTED_PREFIX + token.decode("ascii")


def decrypt_secret(stored: str, *, what: str = "a stored secret") -> str:
    """The clear value of ``stored``; a value without the prefix is returned as it is.

    Raises :class:`SSFKeyError` with an operator-readable message when no configured secret
    decrypts it (``KEYS_ENCRYPTION_SECRET`` changed without keeping the old value).
    """
    if not is_encrypted(stored):
        return stored
    try:
        clear = multi_fernet(_SECRET_INFO).decrypt(stored[len(ENCRYPTED_PREFIX):].encode("ascii"))
    except (InvalidToken, ValueError):
        raise SSFKeyError(
            f"cannot decrypt {what}: KEYS_ENCRYPTION_SECRET (or SECRET_KEY) changed without "
            "keeping the old value after the new one; put it back, or set the secret again"
        ) from None
    return clear.decode("utf-8")


def reencrypt_secret(stored: str) -> str:
    """``stored`` encrypted under the newest at-rest secret (plain values get encrypted)."""
    if not stored:
        return stored
    if not is_encrypted(stored):
        return encrypt_secret(stored)
    try:
        token = multi_fernet(_SECRET_INFO).rotate(stored[len(ENCRYPTED_PREFIX):].encode("ascii"))
    except (InvalidToken, ValueError):
        raise SSFKeyError("cannot decrypt a stored secret with any known secret") from None
    return ENCRYPTED_PREFIX + token.decode("ascii")


def hash_secret(value: str) -> str:
    """The stored digest of a compare-only secret (empty stays empty; idempotent)."""
    if not value or is_hashed(value):
        return value
    return _digest(value)


def _digest(value: str) -> str:
    return HASH_PREFIX + hashlib.sha256(value.encode("utf-8")).hexdigest()


def secret_matches(stored_hash: str, presented: str | None) -> bool:
    """Whether ``presented`` is the secret behind ``stored_hash``, in constant time.

    An empty stored hash matches nothing: a stream without a secret refuses every push.
    The presented value is always hashed (never taken as a digest), so the stored digest
    itself, read from a dump, is no password.
    """
    if not stored_hash or not presented:
        return False
    return hmac.compare_digest(_digest(presented).encode("utf-8"), stored_hash.encode("utf-8"))


class EncryptedTextField(models.TextField):
    """A text field stored encrypted (``ssfenc1:`` + Fernet token), read back in the clear.

    Python code sees the clear value; the column holds the token. Lookups other than
    emptiness (``field=""``) are meaningless on it. A value that no configured secret
    decrypts raises :class:`SSFKeyError` when the row is loaded.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return value
        model = getattr(self, "model", None)
        what = f"{model._meta.label}.{self.name}" if model is not None else "a stored secret"
        return decrypt_secret(value, what=what)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_secret(str(value))


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every ``(model, field name)`` of an installed model that is an EncryptedTextField."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue  # a proxy shares its concrete model's table: rewrite each value once
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                found.append((model, field.name))
    return found


def reencrypt_stored_secrets() -> int:
    """Re-encrypt every encrypted field of every installed model; return how many values.

    Reads the raw column (not the decrypted attribute), so each value is rotated without
    passing through Python code that might log it.
    """
    count = 0
    for model, name in encrypted_fields():
        column = model._meta.get_field(name)
        with write_atomic():
            rows = (model._base_manager.select_for_update().exclude(**{name: ""})
                    .exclude(**{f"{name}__isnull": True}).values_list("pk", flat=True))
            for pk in list(rows):
                raw = _raw_value(model, column, pk)
                if not raw:
                    continue
                # A prefixed value passes get_prep_value unchanged.
                model._base_manager.filter(pk=pk).update(**{name: reencrypt_secret(raw)})
                count += 1
    return count


def _raw_value(model: type[models.Model], field: Any, pk: Any) -> str | None:
    from django.db import connections, router

    connection = connections[router.db_for_read(model)]
    quote = connection.ops.quote_name
    pk_column = str(model._meta.pk.column) if model._meta.pk is not None else "id"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote(str(field.column))} FROM {quote(model._meta.db_table)} "  # noqa: S608
            f"WHERE {quote(pk_column)} = %s", [pk])
        row = cursor.fetchone()
    return row[0] if row else None



def convert_stored_values(schema_editor: Any, model: Any, field_names: list[str],
                          transform: Callable[[str], str]) -> int:
    """Rewrite the raw column values of ``field_names`` with ``transform``; return the count.

    For data migrations: works on the raw columns (the historical model's converters are not
    involved), and with an idempotent ``transform`` (:func:`encrypt_secret`,
    :func:`hash_secret`, :func:`decrypt_secret`) it can run on a table already converted.
    """
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = quote(model._meta.pk.column)
    count = 0
    for name in field_names:
        column = quote(model._meta.get_field(name).column)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {pk}, {column} FROM {table} "  # noqa: S608 - identifiers only
                f"WHERE {column} IS NOT NULL AND {column} <> ''")
            rows = cursor.fetchall()
        for row_pk, value in rows:
            new = transform(value)
            if new != value:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
                        [new, row_pk])
                count += 1
    return count
