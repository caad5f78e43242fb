"""Signing and encryption keys: the pluggable key provider, rotation and the JWKS.

Everything else in django-ssf goes through the module-level helpers:

* :func:`sign_claims` signs SET claims with the current key, returns ``(token, kid)``;
* :func:`jwks` is the JWK Set served at ``jwks_uri``;
* :func:`rotate`, :func:`retire`, :func:`generate_signing_key` and
  :func:`generate_encryption_key` manage keys (the ``ssf_keys`` command and the admin
  call them).

The provider is ``SSF["KEYS_PROVIDER"]``, an import string of a :class:`KeyProvider`
subclass. :class:`DatabaseKeyProvider` (the default) keeps keys in the database with the
private halves encrypted at rest. A KMS or HSM provider overrides :meth:`KeyProvider.sign`
(the private key never leaves the device) and :meth:`KeyProvider.published_jwks`.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import IntegrityError
from django.utils import timezone

from ..conf import ssf_settings
from ..core import jose
from ..core.db import write_atomic
from ..core.errors import SSFKeyError

logger = logging.getLogger(__name__)

__all__ = [
    "DatabaseKeyProvider",
    "KeyInUseError",
    "KeyProvider",
    "SigningKeyHandle",
    "decryption_keys",
    "generate_encryption_key",
    "generate_signing_key",
    "get_key_provider",
    "jwks",
    "provider_stores_keys",
    "public_encryption_jwks",
    "reencrypt",
    "reencrypt_secrets",
    "retire",
    "retire_drained",
    "rotate",
    "sign_claims",
    "undelivered_count",
]


class KeyInUseError(SSFKeyError):
    """A key cannot be retired: SETs signed with it are still waiting for delivery."""


@dataclass(frozen=True)
class SigningKeyHandle:
    """The current signing key: ``key`` is a private key object PyJWT can sign with."""

    kid: str
    alg: str
    key: Any


class KeyProvider(abc.ABC):
    """Where signing and decryption keys come from.

    Subclasses must provide :meth:`signing_key` (or override :meth:`sign`) and
    :meth:`published_jwks`. Key management (:meth:`rotate`, :meth:`retire`, ...) is
    optional: a provider backed by an external KMS rotates keys there, and raises
    :class:`SSFKeyError` here.
    """

    @abc.abstractmethod
    def signing_key(self) -> SigningKeyHandle:
        """The key new SETs are signed with."""

    @abc.abstractmethod
    def published_jwks(self) -> dict:
        """``{"keys": [...]}``: public signing JWKs (``kid``, ``alg``, ``use: "sig"``)."""

    def sign(self, claims: dict) -> tuple[str, str]:
        """Sign ``claims`` as a SET; return ``(compact JWS, kid)``.

        Override this for a KMS/HSM: build the same header (``alg``, ``typ``,
        ``kid``) and let the device sign ``header.payload``.
        """
        handle = self.signing_key()
        token = jose.sign_set(claims, key=handle.key, kid=handle.kid, alg=handle.alg)
        return token, handle.kid

    def signer(self) -> Callable[[dict], tuple[str, str]]:
        """A ``claims -> (compact JWS, kid)`` callable for a batch of SETs.

        The emit fan-out signs one SET per stream; this looks the current key up once for
        the whole batch. A provider that overrides :meth:`sign` (a KMS or HSM that never
        hands out its private key) gets its own ``sign`` called for every SET.
        """
        if type(self).sign is not KeyProvider.sign:
            return self.sign
        handle = self.signing_key()

        def _sign(claims: dict) -> tuple[str, str]:
            token = jose.sign_set(claims, key=handle.key, kid=handle.kid, alg=handle.alg)
            return token, handle.kid

        return _sign

    def decryption_keys(self) -> list[dict]:
        """Private JWKs able to decrypt incoming JWE SETs (none by default)."""
        return []

    def public_encryption_jwks(self) -> dict:
        """``{"keys": [...]}``: public JWKs transmitters may encrypt SETs to."""
        return {"keys": []}

    def _unmanaged(self, operation: str) -> SSFKeyError:
        return SSFKeyError(f"{type(self).__name__} does not support {operation}")

    def generate_signing_key(self, alg: str | None = None, state: str = "next") -> Any:
        raise self._unmanaged("generating signing keys")

    def rotate(self) -> Any:
        raise self._unmanaged("key rotation")

    def retire(self, kid: str, *, force: bool = False) -> Any:
        raise self._unmanaged("retiring keys")

    def generate_encryption_key(self, alg: str = "RSA-OAEP-256") -> Any:
        raise self._unmanaged("generating encryption keys")

    def reencrypt(self) -> int:
        raise self._unmanaged("re-encrypting stored keys")


# Decrypted private keys by kid: key material never changes for a kid, and loading an
# RSA key is slow enough to matter when a SET is signed per stream.
_private_key_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def _cached_private_key(row: Any) -> Any:
    with _cache_lock:
        key = _private_key_cache.get(row.kid)
    if key is None:
        key = row.private_key()
        with _cache_lock:
            _private_key_cache[row.kid] = key
    return key


def _forget_private_key(kid: str) -> None:
    with _cache_lock:
        _private_key_cache.pop(kid, None)


def _outbound_model() -> Any:
    try:
        return apps.get_model("ssf_transmitter", "OutboundSET")
    except LookupError:
        return None


def undelivered_count(kid: str) -> int:
    """How many SETs signed with ``kid`` still await delivery (0 if the outbox is absent)."""
    model = _outbound_model()
    statuses = getattr(model, "UNDELIVERED_STATUSES", None) if model is not None else None
    if model is None or statuses is None:
        return 0
    try:
        return model.objects.filter(signing_kid=kid, status__in=statuses).count()
    except FieldError:
        return 0


class DatabaseKeyProvider(KeyProvider):
    """Keys in the database (:class:`~django_ssf.keys.models.SigningKey`, ``EncryptionKey``).

    A fresh install needs no setup: the first ``signing_key()`` or ``published_jwks()``
    creates an active key and a ``next`` key, and logs it.
    """

    # ---- reading ---------------------------------------------------------------------
    def signing_key(self) -> SigningKeyHandle:
        from .models import SigningKey

        row = SigningKey.objects.filter(state=SigningKey.STATE_ACTIVE).first()
        if row is None:
            row = self._ensure_keys()
        return SigningKeyHandle(kid=row.kid, alg=row.alg, key=_cached_private_key(row))

    def published_jwks(self) -> dict:
        from .models import SigningKey

        rows = list(SigningKey.objects.published())
        if not any(r.state == SigningKey.STATE_ACTIVE for r in rows):
            self._ensure_keys()
            rows = list(SigningKey.objects.published())
        order = {SigningKey.STATE_ACTIVE: 0, SigningKey.STATE_NEXT: 1, SigningKey.STATE_RETIRING: 2}
        rows.sort(key=lambda r: (order[r.state], r.created_at))
        return {"keys": [self._public(r.public_jwk, r.kid, r.alg, "sig") for r in rows]}

    def decryption_keys(self) -> list[dict]:
        from .models import EncryptionKey

        result = []
        for row in EncryptionKey.objects.filter(active=True):
            result.append(
                jose.private_jwk(_cached_private_key(row), kid=row.kid, alg=row.alg, use="enc")
            )
        return result

    def public_encryption_jwks(self) -> dict:
        from .models import EncryptionKey

        rows = EncryptionKey.objects.filter(active=True)
        return {"keys": [self._public(r.public_jwk, r.kid, r.alg, "enc") for r in rows]}

    @staticmethod
    def _public(jwk: dict, kid: str, alg: str, use: str) -> dict:
        public = {k: v for k, v in jwk.items() if k not in jose.PRIVATE_JWK_MEMBERS}
        public.update({"kid": kid, "alg": alg, "use": use})
        return public

    # ---- creating --------------------------------------------------------------------
    @staticmethod
    def _new_signing_row(alg: str, state: str) -> Any:
        from .models import SigningKey, encrypt_private_key

        key = jose.generate_private_key(alg, rsa_key_size=ssf_settings.KEYS_RSA_KEY_SIZE)
        kid = jose.jwk_thumbprint(key)
        now = timezone.now()
        return SigningKey.objects.create(
            kid=kid,
            alg=alg,
            state=state,
            public_jwk=jose.public_jwk(key, kid=kid, alg=alg, use="sig"),
            private_key_encrypted=encrypt_private_key(key),
            activated_at=now if state == SigningKey.STATE_ACTIVE else None,
        )

    def _ensure_keys(self) -> Any:
        """Make sure an active key and a next key exist; return the active one.

        Concurrent callers race on the partial unique constraints; the loser re-reads.
        """
        from .models import SigningKey

        for _attempt in range(3):
            try:
                with write_atomic():
                    active = (
                        SigningKey.objects.select_for_update()
                        .filter(state=SigningKey.STATE_ACTIVE)
                        .first()
                    )
                    if active is None:
                        nxt = SigningKey.objects.filter(state=SigningKey.STATE_NEXT).first()
                        if nxt is not None:
                            # Already published: promoting it keeps publish-before-sign.
                            nxt.state = SigningKey.STATE_ACTIVE
                            nxt.activated_at = timezone.now()
                            nxt.save(update_fields=["state", "activated_at"])
                            active = nxt
                        else:
                            active = self._new_signing_row(
                                ssf_settings.KEYS_SIGNING_ALGORITHM, SigningKey.STATE_ACTIVE
                            )
                            logger.warning(
                                "django-ssf: no signing key existed; generated %s key %s",
                                active.alg,
                                active.kid,
                            )
                    if not SigningKey.objects.filter(state=SigningKey.STATE_NEXT).exists():
                        self._new_signing_row(
                            ssf_settings.KEYS_SIGNING_ALGORITHM, SigningKey.STATE_NEXT
                        )
                    return active
            except IntegrityError:
                continue
        active = SigningKey.objects.filter(state=SigningKey.STATE_ACTIVE).first()
        if active is None:
            raise SSFKeyError("could not create a signing key (concurrent key changes?)")
        return active

    def generate_signing_key(self, alg: str | None = None, state: str = "next") -> Any:
        """Create a signing key in state ``next`` (replacing a pending next key) or ``active``.

        ``active`` is only allowed when no key is active (otherwise use :meth:`rotate`,
        which publishes the key before signing with it).
        """
        from .models import SigningKey

        alg = alg or ssf_settings.KEYS_SIGNING_ALGORITHM
        if alg not in jose.SIGNING_ALGORITHMS:
            raise SSFKeyError(
                f"unsupported signing algorithm {alg!r}; use one of "
                f"{', '.join(jose.SIGNING_ALGORITHMS)}"
            )
        if state not in (SigningKey.STATE_NEXT, SigningKey.STATE_ACTIVE):
            raise SSFKeyError("a new signing key is either 'next' or 'active'")
        with write_atomic():
            if state == SigningKey.STATE_ACTIVE:
                if SigningKey.objects.filter(state=SigningKey.STATE_ACTIVE).exists():
                    raise SSFKeyError(
                        "an active signing key exists; generate a 'next' key and rotate instead"
                    )
            else:
                # A pending next key never signed anything: it can be unpublished at once.
                for old in SigningKey.objects.select_for_update().filter(
                    state=SigningKey.STATE_NEXT
                ):
                    self._mark_retired(old)
            row = self._new_signing_row(alg, state)
        logger.info("django-ssf: generated %s signing key %s (%s)", alg, row.kid, state)
        return row

    # ---- lifecycle -------------------------------------------------------------------
    def rotate(self) -> Any:
        """Promote ``next`` → ``active``, ``active`` → ``retiring``, create a new ``next``.

        The promoted key has been in the JWKS since it was created (publish before sign).
        Without a ``next`` key (it was removed), one is created and the rotation refused,
        so that receivers can pick it up before it signs.
        """
        from .models import SigningKey

        with write_atomic():
            keys = list(
                SigningKey.objects.select_for_update().filter(
                    state__in=(SigningKey.STATE_NEXT, SigningKey.STATE_ACTIVE)
                )
            )
            nxt = next((k for k in keys if k.state == SigningKey.STATE_NEXT), None)
            active = next((k for k in keys if k.state == SigningKey.STATE_ACTIVE), None)
            if nxt is None and active is None:
                created = self._ensure_keys()
                logger.warning("django-ssf: rotate on an empty key store created %s", created.kid)
                return created
            if nxt is not None:
                now = timezone.now()
                if active is not None:
                    active.state = SigningKey.STATE_RETIRING
                    active.save(update_fields=["state"])
                nxt.state = SigningKey.STATE_ACTIVE
                nxt.activated_at = now
                nxt.save(update_fields=["state", "activated_at"])
                self._new_signing_row(ssf_settings.KEYS_SIGNING_ALGORITHM, SigningKey.STATE_NEXT)
        if nxt is None:
            created = self._new_signing_row(
                ssf_settings.KEYS_SIGNING_ALGORITHM, SigningKey.STATE_NEXT
            )
            raise SSFKeyError(
                f"no 'next' key was published, so rotating now would sign with an unpublished "
                f"key; generated next key {created.kid}. Rotate again once receivers have "
                f"refreshed their JWKS (JWKS cache lifetime)."
            )
        logger.info(
            "django-ssf: rotated signing keys: %s is active%s",
            nxt.kid,
            f", {active.kid} is retiring" if active is not None else "",
        )
        return nxt

    def retire(self, kid: str, *, force: bool = False) -> Any:
        """Unpublish a ``retiring`` (or never-used ``next``) key and erase its private key.

        Refused with :class:`KeyInUseError` while SETs signed with it are undelivered,
        unless ``force``. The active key cannot be retired: rotate first.
        """
        from .models import SigningKey

        with write_atomic():
            row = SigningKey.objects.select_for_update().filter(kid=kid).first()
            if row is None:
                raise SSFKeyError(f"no signing key with kid {kid!r}")
            if row.state == SigningKey.STATE_RETIRED:
                return row
            if row.state == SigningKey.STATE_ACTIVE:
                raise SSFKeyError(f"key {kid} is the active signing key; rotate before retiring it")
            if not force:
                pending = undelivered_count(kid)
                if pending:
                    raise KeyInUseError(
                        f"key {kid} still signs {pending} undelivered SET(s); wait until they "
                        f"are delivered (or expire), or use force to retire it anyway"
                    )
            self._mark_retired(row)
        logger.info("django-ssf: retired signing key %s%s", kid, " (forced)" if force else "")
        return row

    @staticmethod
    def _mark_retired(row: Any) -> None:
        row.state = row.STATE_RETIRED
        row.retired_at = timezone.now()
        row.private_key_encrypted = ""
        row.save(update_fields=["state", "retired_at", "private_key_encrypted"])
        _forget_private_key(row.kid)

    def retire_drained(self) -> list[str]:
        """Retire every ``retiring`` key with no undelivered SETs left; return their kids."""
        from .models import SigningKey

        done = []
        for row in SigningKey.objects.filter(state=SigningKey.STATE_RETIRING):
            try:
                self.retire(row.kid)
            except KeyInUseError:
                continue
            done.append(row.kid)
        return done

    def reencrypt(self) -> int:
        """Re-encrypt every stored private key under the first at-rest secret.

        Run after putting a new secret first in ``KEYS_ENCRYPTION_SECRET`` (old ones after
        it); afterwards the old secrets can be dropped. Returns the number of keys.
        """
        from .models import ClientKey, EncryptionKey, SigningKey, reencrypt_private_key

        count = 0
        with write_atomic():
            for model in (SigningKey, EncryptionKey, ClientKey):
                for row in model.objects.select_for_update().exclude(private_key_encrypted=""):
                    row.private_key_encrypted = reencrypt_private_key(row.private_key_encrypted)
                    row.save(update_fields=["private_key_encrypted"])
                    count += 1
        return count

    def generate_encryption_key(self, alg: str = "RSA-OAEP-256") -> Any:
        """Create an active receiver decryption key for ``alg``."""
        from .models import EncryptionKey, encrypt_private_key

        key = jose.generate_encryption_private_key(alg, rsa_key_size=ssf_settings.KEYS_RSA_KEY_SIZE)
        kid = jose.jwk_thumbprint(key)
        row = EncryptionKey.objects.create(
            kid=kid,
            alg=alg,
            public_jwk=jose.public_jwk(key, kid=kid, alg=alg, use="enc"),
            private_key_encrypted=encrypt_private_key(key),
            active=True,
        )
        logger.info("django-ssf: generated %s encryption key %s", alg, kid)
        return row


# ---- module-level helpers ------------------------------------------------------------


def get_key_provider() -> KeyProvider:
    """An instance of ``SSF["KEYS_PROVIDER"]``."""
    provider_class = ssf_settings.KEYS_PROVIDER
    if not (isinstance(provider_class, type) and issubclass(provider_class, KeyProvider)):
        raise ImproperlyConfigured(
            "SSF['KEYS_PROVIDER'] must be an import string of a "
            "django_ssf.keys.keystore.KeyProvider subclass"
        )
    return provider_class()


def sign_claims(claims: dict) -> tuple[str, str]:
    """Sign SET claims with the current key; return ``(compact JWS, kid)``."""
    return get_key_provider().sign(claims)


def jwks() -> dict:
    """The JWK Set to serve at ``jwks_uri`` (next, active and retiring keys)."""
    return get_key_provider().published_jwks()


def decryption_keys() -> list[dict]:
    """Private JWKs of the active receiver decryption keys (for ``jose.decrypt_set``)."""
    return get_key_provider().decryption_keys()


def public_encryption_jwks() -> dict:
    """Public JWKs a transmitter may encrypt SETs to (for stream configuration)."""
    return get_key_provider().public_encryption_jwks()


def generate_signing_key(alg: str | None = None, state: str = "next") -> Any:
    """Create a signing key (``SigningKey`` row with the database provider)."""
    return get_key_provider().generate_signing_key(alg, state)


def rotate() -> Any:
    """Rotate signing keys; return the newly active key."""
    return get_key_provider().rotate()


def retire(kid: str, *, force: bool = False) -> Any:
    """Retire a signing key; :class:`KeyInUseError` while its SETs are undelivered."""
    return get_key_provider().retire(kid, force=force)


def retire_drained() -> list[str]:
    """Retire every retiring key whose SETs have all been delivered; return their kids."""
    provider = get_key_provider()
    method = getattr(provider, "retire_drained", None)
    return method() if method is not None else []


def generate_encryption_key(alg: str = "RSA-OAEP-256") -> Any:
    """Create an active receiver decryption key (``EncryptionKey`` row)."""
    return get_key_provider().generate_encryption_key(alg)


def reencrypt() -> int:
    """Re-encrypt stored private keys under the newest at-rest secret; return the count."""
    return get_key_provider().reencrypt()


def provider_stores_keys() -> bool:
    """Whether the configured key provider keeps private keys that ``reencrypt`` rewrites."""
    return type(get_key_provider()).reencrypt is not KeyProvider.reencrypt


def reencrypt_secrets() -> int:
    """Re-encrypt the stored secrets of every installed role under the newest at-rest secret.

    Every model field that is an :class:`~django_ssf.keys.secrets.EncryptedTextField` (the
    receiver's client secrets, bearer and access tokens; the transmitter's push
    ``authorization_header``); returns how many values were rewritten.
    """
    from .secrets import reencrypt_stored_secrets

    return reencrypt_stored_secrets()
