"""Is this SET trustworthy? :func:`validate_set` answers for one stream, nothing stored.

The receiver validation pipeline (checklist §2.4). Every failure raises one
:class:`~django_ssf.core.errors.SETValidationError` carrying exactly one RFC 8935 §2.4
error code:

1. the stream is still ours (``access_denied`` once deleted at the transmitter);
2. JWE → decrypted with our receiver keys (``invalid_key`` / ``invalid_request``);
3. the stream configuration ``iss`` and the discovery issuer agree (``invalid_issuer``);
4. :func:`django_ssf.core.jose.verify_set`: ``alg``/``typ``, signature with the
   transmitter's cached JWKS (``invalid_key``), ``iss`` (``invalid_issuer``), ``aud`` = the
   stream's ``aud`` (``invalid_audience``), ``iat``, ``jti``, no ``sub``/``exp``, one
   event, ``txn`` (``invalid_request``); ``jti``, ``txn`` and the event URI must fit
   their columns (``invalid_request``). A signature that fails with a key we hold makes
   us refetch the JWKS once (rate limited; a key replaced under the same ``kid``) and
   verify again. A JWKS that cannot be fetched *for now* raises a
   ``transient`` error: the caller defers the SET (push 503, poll unacknowledged);
5. the event URI (draft ``sse`` URIs only for transmitters allowed them);
6. the subject: ``sub_id``, or for legacy transmitters the subject inside the event;
   Google's ``subject_type`` only when allowed; RFC 9493 validation (``invalid_request``),
   except that complex-subject members in a format we do not know are kept unchecked;
   a complex subject with a ``critical_subject_members`` member we cannot process (its
   name is not in ``RECEIVER_PROCESSABLE_SUBJECT_MEMBERS``, or its format is unknown) is
   *discarded*: acknowledged, stored, never processed (SSF §3.6); a non-critical member
   we cannot process is ignored;
7. the event payload against its type (``invalid_request``) - leniently: an unexpected
   value of an *optional* claim, a member the specification does not define, an event
   type we do not know or a top-level claim we do not know is accepted, stored as sent
   and *flagged* (``ValidatedSET.flags``); the policy table is in docs/conformance.md;
8. verification (:func:`check_state`, which reads the database): ``state`` must match a
   verification we requested (``invalid_state``); the subject of verification /
   stream-updated must be this stream (``invalid_request``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import EventValidationError, SETValidationError, SubjectError
from .models import PendingVerification, ReceiverStream

__all__ = ["ValidatedSET", "check_state", "validate_set"]

MAX_JTI_LENGTH = 255
# Longest event-type URI, ``txn`` and ``iss`` we store (the column sizes of InboundSET):
# longer values are rejected as ``invalid_request`` instead of failing the INSERT.
MAX_EVENT_TYPE_LENGTH = 512
MAX_TXN_LENGTH = 255
MAX_ISS_LENGTH = 512
# The top-level claims a SET may carry (RFC 8417 §2.2, SSF §4.1); any other is flagged.
KNOWN_SET_CLAIMS = frozenset({"iss", "aud", "iat", "jti", "txn", "toe", "sub_id", "events"})


@dataclass
class ValidatedSET:
    """The outcome of a successful validation (nothing stored yet)."""

    claims: dict[str, Any]
    event_type: str
    payload: dict[str, Any]
    subject: dict[str, Any] | None
    txn: str
    discard_reason: str = ""
    # Accepted but unexpected: see the policy table in docs/conformance.md.
    flags: list[str] = field(default_factory=list)



def _reject(code: str, description: str) -> SETValidationError:
    return SETValidationError(code, description)


def _as_text(token: str | bytes) -> str:
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise _reject(c.ERR_INVALID_REQUEST, "the SET is not ASCII text") from None
    if not isinstance(token, str):
        raise _reject(c.ERR_INVALID_REQUEST, "the SET must be a string")
    return token.strip()


def _decrypt_if_needed(token: str) -> str:
    from ..core import jose

    if not jose.is_jwe(token):
        return token
    from ..keys.keystore import get_key_provider

    return jose.decrypt_set(token, get_key_provider().decryption_keys())


def _subject_of(
    stream: ReceiverStream, claims: dict, event_type: str, payload: dict
) -> dict[str, Any] | None:
    """The primary subject, with legacy conversions when the transmitter is allowed them."""
    from ..core.subjects import from_legacy, validate_subject

    transmitter = stream.transmitter
    subject = claims.get("sub_id")
    where = "sub_id"
    if subject is None and transmitter.allows_subject_in_event:
        subject = payload.get("subject")
        where = f"events[{event_type}].subject"
    if subject is None:
        if transmitter.allows_subject_in_event and event_type in c.CONTROL_EVENTS:
            return None  # SSF ID1 control events carry no subject at all
        raise _reject(c.ERR_INVALID_REQUEST, "the SET has no sub_id (SSF §3.1)")
    if not isinstance(subject, dict):
        raise _reject(c.ERR_INVALID_REQUEST, f"{where} must be a JSON object")
    if "subject_type" in subject:
        if not transmitter.allows_subject_type:
            raise _reject(
                c.ERR_INVALID_REQUEST,
                f"{where} uses subject_type; SSF 1.0 subjects use format (RFC 9493 §3)",
            )
        subject = from_legacy(subject)
    legacy = transmitter.allows_subject_type or transmitter.allows_subject_in_event
    try:
        # Lenient on complex members in formats we do not know: the members we do know
        # are still processed (SSF §3.6 best effort); a critical unknown one discards
        # the event (see unprocessable_critical_members in validate_set).
        return validate_subject(subject, legacy=legacy, unknown_formats="allow")
    except SubjectError as exc:
        raise _reject(c.ERR_INVALID_REQUEST, f"{where} is not a valid subject: {exc}") from None


def _check_stream_subject(stream: ReceiverStream, subject: dict | None, event_type: str) -> None:
    """Verification and stream-updated name the stream itself (SSF §8.1.4.1, §8.1.5)."""
    if subject is None:
        return
    if subject.get("format") != c.FORMAT_OPAQUE or subject.get("id") != stream.stream_id:
        raise _reject(
            c.ERR_INVALID_REQUEST,
            f"the subject of a {event_type.rsplit('/', 1)[-1]} event must be "
            f"{{'format': 'opaque', 'id': '{stream.stream_id}'}} (this stream)",
        )


def validate_set(stream: ReceiverStream, token: str | bytes) -> ValidatedSET:
    """Run steps 1-7 of this module's docstring; raise ``SETValidationError``.

    Verification ``state`` matching needs the database: see :func:`check_state`.
    """
    from ..core import jose
    from ..core.events import normalize_event_uri, validate_event_payload, validate_event_subject
    from ..core.subjects import unprocessable_critical_members
    from .jwks import key_resolver, refetch_after_bad_signature

    transmitter = stream.transmitter
    if not stream.active:
        raise _reject(c.ERR_ACCESS_DENIED, "this stream has been deleted by the receiver")
    token = _decrypt_if_needed(_as_text(token))
    if stream.iss and stream.iss != transmitter.issuer:
        raise _reject(
            c.ERR_INVALID_ISSUER,
            f"the stream's iss {stream.iss!r} is not the transmitter issuer "
            f"{transmitter.issuer!r} (SSF §4.1.6)",
        )
    if not stream.audiences:
        raise _reject(
            c.ERR_INVALID_AUDIENCE, "the transmitter returned no aud for this stream"
        )
    def verify() -> dict[str, Any]:
        return jose.verify_set(
            token,
            key_resolver=key_resolver(transmitter),
            issuer=transmitter.issuer,
            audience=stream.aud,
            allowed_algs=list(ssf_settings.RECEIVER_ACCEPTED_ALGORITHMS),
            leeway=int(ssf_settings.RECEIVER_IAT_LEEWAY),
            require_sub_id=not transmitter.allows_subject_in_event,
            allow_numeric_txn=transmitter.allows_numeric_txn,
        )

    keys_version = transmitter.jwks_fetched_at
    try:
        claims = verify()
    except jose.InvalidSignature as mismatch:
        # The key under this kid may have been replaced at the transmitter: refetch once
        # (rate limited) and verify again - unless the keys were fetched just now, while
        # verifying this SET. Otherwise the verdict stands.
        if transmitter.jwks_fetched_at != keys_version or not refetch_after_bad_signature(
            transmitter, mismatch.kid
        ):
            raise
        claims = verify()
    _check_lengths(claims)
    ((raw_type, payload),) = claims["events"].items()
    if raw_type.startswith(c.LEGACY_SSE_EVENT_BASE) and not transmitter.allows_sse_namespace:
        raise _reject(
            c.ERR_INVALID_REQUEST,
            f"{raw_type} is a draft (sse) event URI; SSF 1.0 uses {c.SSF_EVENT_BASE}",
        )
    event_type = normalize_event_uri(raw_type, legacy=transmitter.allows_sse_namespace)
    subject = _subject_of(stream, claims, event_type, payload)
    flags = [f"set: unknown claim {name!r}" for name in claims if name not in KNOWN_SET_CLAIMS]
    try:
        validate_event_payload(event_type, payload, unknown_ok=True, flags=flags)
        if subject is not None and claims.get("sub_id") is not None:
            validate_event_subject(event_type, subject)
    except (EventValidationError, SubjectError) as exc:
        raise _reject(c.ERR_INVALID_REQUEST, str(exc)) from None
    if event_type in c.CONTROL_EVENTS:
        _check_stream_subject(stream, subject, event_type)
    discard = ""
    if subject is not None:
        bad = unprocessable_critical_members(
            subject,
            transmitter.critical_subject_members,
            list(ssf_settings.RECEIVER_PROCESSABLE_SUBJECT_MEMBERS),
        )
        if bad:
            discard = (
                f"critical subject member(s) {', '.join(bad)} cannot be processed (SSF §3.6)"
            )
    txn = claims.get("txn")
    return ValidatedSET(
        claims=claims,
        event_type=event_type,
        payload=payload,
        subject=subject,
        txn=str(txn) if txn is not None else "",
        discard_reason=discard,
        flags=flags,
    )


def _check_lengths(claims: dict) -> None:
    """Strings we store must fit their columns: reject, never truncate a valid SET."""
    txn = claims.get("txn")
    ((event_type, _),) = claims["events"].items()
    for name, value, limit in (
        ("jti", claims["jti"], MAX_JTI_LENGTH),
        ("iss", claims["iss"], MAX_ISS_LENGTH),
        ("the event-type URI", event_type, MAX_EVENT_TYPE_LENGTH),
        ("txn", str(txn) if txn is not None else "", MAX_TXN_LENGTH),
    ):
        if isinstance(value, str) and len(value) > limit:
            raise _reject(c.ERR_INVALID_REQUEST, f"{name} is longer than {limit} characters")


def check_state(stream: ReceiverStream, validated: ValidatedSET) -> PendingVerification | None:
    """The verification we requested that this verification event answers, if any.

    ``None`` for every other event type and for an unsolicited verification (no
    ``state``); raises ``invalid_state`` for a ``state`` we never sent.
    """
    if validated.event_type != c.EVENT_VERIFICATION:
        return None
    state = validated.payload.get("state")
    if state is None:
        return None  # unsolicited verification (SSF §8.1.4.1)
    if not isinstance(state, str):
        raise _reject(c.ERR_INVALID_STATE, "the verification state must be a string")
    pending = PendingVerification.objects.filter(stream=stream, state=state).first()
    if pending is None:
        raise _reject(
            c.ERR_INVALID_STATE, "the verification state matches no verification we requested"
        )
    return pending

