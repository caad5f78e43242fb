"""Transmitter conformance: the checklist items a conformance suite probes, tested over HTTP.

Each test is written against the SSF 1.0 / RFC 8935 / RFC 8936 text (section numbers in
the names and comments), the way a receiver or the OpenID conformance suite sees the
transmitter: discover, get a stream over the control plane, then read SETs from the
advertised poll ``endpoint_url`` or a live push receiver. The audit table in
``docs/transmitter.md`` maps every checklist item to the test that proves it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from urllib.parse import urlsplit

import jwt
import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import resolve

from django_ssf import signals
from django_ssf.core import constants as c
from django_ssf.core.subjects import validate_subject
from django_ssf.transmitter import api as tx
from django_ssf.transmitter import errors as stream_errors
from django_ssf.transmitter import poll as poll_service
from django_ssf.transmitter import status as status_service
from django_ssf.transmitter import subjects as subject_service
from django_ssf.transmitter import wakeup
from django_ssf.transmitter.delivery import drain_stream
from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET, Stream
from tests.helpers.transmitter_control import (
    BearerClient,
    create_stream,
    make_receiver,
    make_token,
)
from tests.helpers.transmitter_delivery import ssf_settings_for, stub_receiver

ALICE = {"format": "email", "email": "alice@example.com"}
BOB = {"format": "email", "email": "bob@example.com"}
SESSION_REVOKED = c.CAEP_SESSION_REVOKED


# ---- helpers ------------------------------------------------------------------------------
def _path(url: str) -> str:
    return urlsplit(url).path


def _poll(bearer: BearerClient, config: dict, body: dict | None = None, **kw):
    """POST to the stream's advertised poll ``endpoint_url`` (RFC 8936 §2.4)."""
    headers = {"Authorization": f"Bearer {bearer.token}"} if bearer.token else {}
    headers.update(kw.pop("headers", {}))
    return Client().post(
        _path(config["delivery"]["endpoint_url"]),
        data=json.dumps(body if body is not None else {"returnImmediately": True}),
        content_type="application/json",
        headers=headers,
        **kw,
    )


def _sets(bearer: BearerClient, config: dict, body: dict | None = None) -> dict[str, str]:
    response = _poll(bearer, config, body)
    assert response.status_code == 200, response.content
    return response.json()["sets"]


def _emit(subject: dict = ALICE) -> list[str]:
    return tx.emit((SESSION_REVOKED, {}), subject)


def _b64int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def assert_transmitter_set_checks(token: str, config: dict, jwks: dict) -> dict:
    """Appendix B "Transmitter SET checks" on one compact SET; returns its claims."""
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "secevent+jwt"  # SSF §4.1.1: explicit typing, exact value
    assert header["alg"] == "RS256"  # IOP §2.6
    (jwk,) = [k for k in jwks["keys"] if k.get("kid") == header["kid"]]
    assert jwk["kty"] == "RSA" and _b64int(jwk["n"]).bit_length() >= 2048  # RFC 7518 §3.3
    key = jwt.PyJWK(jwk, algorithm="RS256").key
    claims = jwt.decode(token, key, algorithms=["RS256"], options={"verify_aud": False})
    assert "exp" not in claims  # SSF §4.1.7
    assert "sub" not in claims  # SSF §4.1.2
    assert isinstance(claims["iat"], int) and claims["iat"] <= time.time() + 1
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert claims["iss"] == config["iss"]  # SSF §4.1.6
    aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    stream_aud = config["aud"] if isinstance(config["aud"], list) else [config["aud"]]
    assert set(stream_aud) <= set(aud)  # SSF §4.1.8
    assert isinstance(claims["txn"], str) and claims["txn"]  # RFC 8417 §2.2, SSF §4.1.9
    assert isinstance(claims["events"], dict) and len(claims["events"]) == 1  # IOP §2.8.1
    assert all(isinstance(v, dict) for v in claims["events"].values())  # RFC 8417 §2.2
    validate_subject(claims["sub_id"])  # SSF §3.1: a valid Subject Identifier
    return claims


@pytest.fixture
def static_key(settings):
    ssf_settings_for(
        settings, TRANSMITTER_POLL_LONG_POLL_TIMEOUT=0.3, TRANSMITTER_POLL_CHECK_INTERVAL=0.05
    )


# ---- §1 discovery and §2 SET format --------------------------------------------------------
@pytest.mark.django_db
def test_sets_of_every_kind_pass_the_transmitter_set_checks(api, signing_key):
    """Appendix B SET checks on a host event, a verification and a stream-updated SET."""
    discovery = Client().get("/.well-known/ssf-configuration").json()
    jwks = Client().get(_path(discovery["jwks_uri"])).json()
    config = create_stream(api, {"events_requested": [SESSION_REVOKED]})
    assert config["iss"] == discovery["issuer"]  # SSF §7.2.4 / §4.1.6
    _emit()
    assert api.post("ssf-verify", {"stream_id": config["stream_id"], "state": "s-1"}).status_code
    stream = Stream.objects.get(stream_id=config["stream_id"])
    status_service.set_status(stream, c.STATUS_PAUSED, "maintenance", initiator="transmitter")
    status_service.set_status(stream, c.STATUS_ENABLED, None, initiator="transmitter")
    tx.send_verification(stream, None)  # unsolicited
    sets = _sets(api, config, {"returnImmediately": True, "maxEvents": 100})
    claims = [assert_transmitter_set_checks(tok, config, jwks) for tok in sets.values()]
    assert all(isinstance(tok, str) for tok in sets.values())  # RFC 8936 §2.5: jti → string
    assert list(sets) == [cl["jti"] for cl in claims]
    kinds = [next(iter(cl["events"])) for cl in claims]
    assert kinds == [
        SESSION_REVOKED,
        c.EVENT_VERIFICATION,
        c.EVENT_STREAM_UPDATED,
        c.EVENT_STREAM_UPDATED,
        c.EVENT_VERIFICATION,
    ]
    stream_subject = {"format": "opaque", "id": config["stream_id"]}
    assert claims[0]["sub_id"] == ALICE
    assert all(cl["sub_id"] == stream_subject for cl in claims[1:])  # SSF §8.1.4.1, §8.1.5
    assert claims[1]["events"][c.EVENT_VERIFICATION] == {"state": "s-1"}  # echoed unchanged
    assert claims[2]["events"][c.EVENT_STREAM_UPDATED] == {
        "status": "paused",
        "reason": "maintenance",
    }
    assert claims[3]["events"][c.EVENT_STREAM_UPDATED] == {"status": "enabled"}
    # SSF §8.1.4.1: a transmitter-initiated verification carries no state.
    assert claims[4]["events"][c.EVENT_VERIFICATION] == {}


# ---- §8.1 push request ----------------------------------------------------------------------
@pytest.mark.django_db
def test_verification_over_push_with_and_without_authorization(api, static_key):
    """Appendix B "verification over push" and "push with no auth" (RFC 8935 §2.1)."""
    with stub_receiver() as (url, state):
        with_auth = create_stream(
            api,
            {
                "delivery": {
                    "method": c.DELIVERY_PUSH,
                    "endpoint_url": url + "/a",
                    "authorization_header": "Bearer push-secret",
                }
            },
        )
        without = create_stream(
            api, {"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": url + "/b"}}
        )
        for config, st in ((with_auth, "one"), (without, "two")):
            assert (
                api.post("ssf-verify", {"stream_id": config["stream_id"], "state": st}).status_code
                == 204
            )
            pk = Stream.objects.get(stream_id=config["stream_id"]).pk
            assert drain_stream(pk).delivered == 1
        got = {r.path: r for r in state.wait_for(2)}
    first, second = got["/a"], got["/b"]
    for request, st in ((first, "one"), (second, "two")):
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/secevent+jwt"
        assert "application/json" in request.headers["Accept"]
        claims = jwt.decode(request.body, options={"verify_signature": False})
        assert claims["events"] == {c.EVENT_VERIFICATION: {"state": st}}
        assert request.body.count(b".") == 2  # the compact SET and nothing else
    assert first.headers["Authorization"] == "Bearer push-secret"  # SSF §6.1.1, verbatim
    assert "Authorization" not in second.headers


# ---- §9.2 poll: the Appendix B poll variations ------------------------------------------------
@pytest.mark.django_db
def test_poll_only_poll_and_ack_ack_only_and_set_errs(api, static_key, settings):
    ssf_settings_for(settings, TRANSMITTER_POLL_REDELIVERY_DELAY=0)
    config = create_stream(api)
    # Nothing pending: {} (RFC 8936 §2.5), also for a short poll.
    assert _poll(api, config).json() == {"sets": {}, "moreAvailable": False}
    jtis = [_emit()[0] for _ in range(3)]
    # Poll-only with maxEvents: oldest first, moreAvailable.
    body = _poll(api, config, {"returnImmediately": True, "maxEvents": 2}).json()
    assert list(body["sets"]) == jtis[:2] and body["moreAvailable"] is True
    # Poll-and-ack: the acked SETs are never returned again, even once due for redelivery.
    body = _poll(api, config, {"returnImmediately": True, "ack": jtis[:2]}).json()
    assert list(body["sets"]) == [jtis[2]] and body["moreAvailable"] is False
    # Ack-only (maxEvents 0): no SETs in the answer.
    body = _poll(api, config, {"returnImmediately": True, "maxEvents": 0, "ack": [jtis[2]]})
    assert body.json()["sets"] == {}
    later = _emit()[0]
    # setErrs: recorded, the SET is failed and not served again.
    _sets(api, config)
    body = _poll(
        api,
        config,
        {"returnImmediately": True, "setErrs": {later: {"err": "invalid_key", "description": "x"}}},
    ).json()
    assert body["sets"] == {}
    row = OutboundSET.objects.get(jti=later)
    assert row.status == "failed" and row.last_error_code == "invalid_key"
    assert _poll(api, config).json()["sets"] == {}
    assert set(OutboundSET.objects.filter(jti__in=jtis).values_list("status", flat=True)) == {
        "delivered"
    }


@pytest.mark.django_db
def test_poll_endpoint_url_is_unique_per_stream_and_serves_only_its_stream(
    api,
    other_api,
    static_key,
):
    """SSF §6.1.2: poll ``endpoint_url`` unique per stream; Appendix B poll authorization."""
    a = create_stream(api)
    b = create_stream(api)
    theirs = create_stream(other_api)
    urls = {cfg["delivery"]["endpoint_url"] for cfg in (a, b, theirs)}
    assert len(urls) == 3 and all(u.startswith("https://") for u in urls)
    stream_a = Stream.objects.get(stream_id=a["stream_id"])
    (jti,) = tx.emit((SESSION_REVOKED, {}), ALICE, streams=[stream_a])
    assert list(_sets(api, b)) == []
    assert _poll(other_api, a).status_code == 404  # another receiver's stream
    assert _poll(BearerClient(None), a).status_code == 401
    assert _poll(BearerClient(None), a)["WWW-Authenticate"].startswith("Bearer")  # RFC 8936 §3
    assert _poll(BearerClient("not-a-token"), a).status_code == 401
    assert list(_sets(api, a)) == [jti]


@pytest.mark.django_db
def test_invalid_poll_body_and_unknown_stream(api, static_key):
    config = create_stream(api)
    url = _path(config["delivery"]["endpoint_url"])
    auth = {"Authorization": f"Bearer {api.token}"}
    for raw in ("{not json", "[1]", '{"maxEvents": "ten"}', '{"ack": "jti"}'):
        response = Client().post(url, data=raw, content_type="application/json", headers=auth)
        assert response.status_code == 400, raw  # RFC 8936 §2.5.1
    unknown = url.replace(config["stream_id"], "0" * 32)
    assert (
        Client().post(unknown, data="{}", content_type="application/json", headers=auth).status_code
        == 404
    )


# ---- §9.2 long poll --------------------------------------------------------------------------
@pytest.mark.django_db
def test_long_poll_is_bounded_by_the_setting_and_returns_empty_sets(api, settings, outbox_checks):
    ssf_settings_for(
        settings, TRANSMITTER_POLL_LONG_POLL_TIMEOUT=0.4, TRANSMITTER_POLL_CHECK_INTERVAL=0.1
    )
    config = create_stream(api)
    response = _poll(api, config, {})  # returnImmediately defaults to false: a long poll
    assert response.status_code == 200
    assert response.json()["sets"] == {}
    # It held the request (checked the outbox again while waiting) and then gave up.
    assert len(outbox_checks) >= 2 and set(outbox_checks) == {0}


def test_long_poll_view_opts_out_of_atomic_requests():
    match = resolve("/ssf/poll/abc")
    assert "default" in getattr(match.func, "_non_atomic_requests", set())


def _emit_when(waiting: threading.Event, errors: list) -> threading.Thread:
    """Emit one SET from another thread once the long poll is ``waiting``."""

    def run() -> None:
        try:
            assert waiting.wait(timeout=10), "the long poll never started waiting"
            with transaction.atomic():
                _emit()
        except Exception as exc:  # surfaced by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("notify", "interval"),
    # Same process: the commit notifies the waiting poll, which wakes at once instead of at
    # its next outbox check (those back off to 3 s apart). Other process (in-process
    # notification off): the SET is seen at the next outbox check, 0.1 s apart at most.
    [(True, 3.0), (False, 0.1)],
    ids=["same-process", "other-process"],
)
def test_long_poll_wakes_when_a_set_is_committed_meanwhile(
    settings, monkeypatch, outbox_checks, notify, interval
):
    """RFC 8936 §2.2: a waiting long poll returns the SET committed during the wait."""
    ssf_settings_for(
        settings, TRANSMITTER_POLL_LONG_POLL_TIMEOUT=8.0, TRANSMITTER_POLL_CHECK_INTERVAL=interval
    )
    notified: list[tuple[set[int], int]] = []  # (streams announced, polls woken)
    # The in-process wake-up of sync polls lives in wakeup (outbox re-exports it).
    real_notify = wakeup.notify_poll_waiters

    def notify_poll_waiters(pks) -> int:
        woken = real_notify(pks) if notify else 0
        notified.append((set(pks), woken))
        return woken

    monkeypatch.setattr(wakeup, "notify_poll_waiters", notify_poll_waiters)
    app = make_receiver("long-poller")
    bearer = BearerClient(make_token(app))
    config = create_stream(bearer, {"events_requested": [SESSION_REVOKED]})
    stream = Stream.objects.get(stream_id=config["stream_id"])
    waiting = threading.Event()
    real_fetch = poll_service.fetch_sets  # the outbox_checks recorder

    def fetch_then_signal(stream_, limit):
        found = real_fetch(stream_, limit)
        waiting.set()
        return found

    monkeypatch.setattr(poll_service, "fetch_sets", fetch_then_signal)
    errors: list = []
    thread = _emit_when(waiting, errors)
    body = _poll(bearer, config, {}).json()
    thread.join(timeout=5)
    assert not errors
    assert len(body["sets"]) == 1
    # Order: the poll was waiting (an empty check) before the SET was committed, and the
    # check after the commit found it. In the same process the commit woke that waiting
    # poll; otherwise nothing woke it and its own next check found the SET.
    assert outbox_checks[0] == 0 and outbox_checks[-1] == 1
    assert [(stream.pk in pks, woken) for pks, woken in notified] == [(True, 1 if notify else 0)]


# ---- RFC 8936 §2.4: redelivery cap -----------------------------------------------------------
@pytest.mark.django_db
def test_redelivery_cap_marks_the_set_failed_with_a_reason(api, static_key, settings):
    ssf_settings_for(
        settings, TRANSMITTER_POLL_REDELIVERY_DELAY=0, TRANSMITTER_POLL_MAX_DELIVERIES=2
    )
    config = create_stream(api)
    (jti,) = _emit()
    failures = []

    def on_failed(sender, outbound, error, **kw):
        failures.append((outbound.jti, error["err"]))

    signals.set_delivery_failed.connect(on_failed)
    try:
        assert list(_sets(api, config)) == [jti]
        assert list(_sets(api, config)) == [jti]  # redelivered once
        assert _sets(api, config) == {}  # the cap is reached: not served a third time
    finally:
        signals.set_delivery_failed.disconnect(on_failed)
    row = OutboundSET.objects.get(jti=jti)
    assert row.status == "failed" and row.attempts == 2
    assert row.last_error_code == poll_service.REDELIVERY_LIMIT_ERROR
    assert "TRANSMITTER_POLL_MAX_DELIVERIES" in row.last_error_description
    assert failures == [(jti, "poll_redelivery_limit")]
    outcomes = list(DeliveryAttempt.objects.filter(outbound=row).values_list("outcome", flat=True))
    assert sorted(outcomes) == ["failed", "served", "served"]
    # A late ack of a failed SET changes nothing and is not an error.
    assert _poll(api, config, {"returnImmediately": True, "ack": [jti]}).status_code == 200


@pytest.mark.django_db
def test_redelivery_is_unlimited_by_default(api, static_key, settings):
    ssf_settings_for(settings, TRANSMITTER_POLL_REDELIVERY_DELAY=0)
    config = create_stream(api)
    (jti,) = _emit()
    for _ in range(5):
        assert list(_sets(api, config)) == [jti]
    assert OutboundSET.objects.get(jti=jti).status == "pending"


# ---- §5.1 paused holds, disabled drops (over the control plane) ------------------------------
@pytest.mark.django_db
def test_paused_stream_holds_and_disabled_stream_drops(api, static_key):
    config = create_stream(api)
    sid = config["stream_id"]
    assert api.post("ssf-status", {"stream_id": sid, "status": "paused"}).status_code == 200
    (held,) = _emit()
    assert _sets(api, config) == {}  # paused: nothing is transmitted (SSF §8.1.2.1)
    assert api.post("ssf-status", {"stream_id": sid, "status": "enabled"}).status_code == 200
    assert list(_sets(api, config)) == [held]  # held, then sent once enabled
    assert api.post("ssf-status", {"stream_id": sid, "status": "disabled"}).status_code == 200
    assert _emit() == []  # disabled: nothing is produced for the stream, nothing held
    assert _sets(api, config) == {}
    assert api.post("ssf-status", {"stream_id": sid, "status": "enabled"}).status_code == 200
    assert _sets(api, config) == {}  # lost for good once enabled again
    assert not OutboundSET.objects.filter(status__in=["pending", "held"]).exists()


# ---- §6 subject control ----------------------------------------------------------------------
@pytest.mark.django_db
def test_subject_control_on_none_and_all_streams(api, static_key, settings):
    ssf_settings_for(settings, TRANSMITTER_DEFAULT_SUBJECTS="NONE")
    none = create_stream(api, {"events_requested": [SESSION_REVOKED]})
    _emit(ALICE)
    assert _sets(api, none) == {}  # NONE: nothing until subjects are added (SSF §7.1)
    add = api.post("ssf-subjects-add", {"stream_id": none["stream_id"], "subject": ALICE})
    assert add.status_code == 200 and add.content == b""
    (alice_jti,) = _emit(ALICE)
    _emit(BOB)
    assert list(_sets(api, none, {"returnImmediately": True, "ack": []})) == [alice_jti]
    rm = api.post("ssf-subjects-remove", {"stream_id": none["stream_id"], "subject": ALICE})
    assert rm.status_code == 204
    OutboundSET.objects.update(status="delivered")
    _emit(ALICE)
    assert _sets(api, none) == {}

    ssf_settings_for(settings, TRANSMITTER_DEFAULT_SUBJECTS="ALL")
    every = create_stream(api, {"events_requested": [SESSION_REVOKED]})
    rm = api.post("ssf-subjects-remove", {"stream_id": every["stream_id"], "subject": BOB})
    assert rm.status_code == 204
    assert _emit(BOB) == []  # removed from the ALL stream, never added to the NONE one
    (alice_jti,) = _emit(ALICE)  # the NONE stream no longer includes alice
    assert list(_sets(api, every)) == [alice_jti]


# ---- §6.1/§6.2 429 rate limit (checklist §11.6) ------------------------------------------------
@pytest.mark.django_db
def test_add_and_remove_subject_share_a_per_stream_rate_limit(api, settings):
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_SUBJECT_RATE_LIMIT": "3/m",
    }
    sid = create_stream(api)["stream_id"]
    other = create_stream(api)["stream_id"]
    assert api.post("ssf-subjects-add", {"stream_id": sid, "subject": ALICE}).status_code == 200
    assert api.post("ssf-subjects-remove", {"stream_id": sid, "subject": ALICE}).status_code == 204
    assert api.post("ssf-subjects-add", {"stream_id": sid, "subject": BOB}).status_code == 200
    for name in ("ssf-subjects-add", "ssf-subjects-remove"):
        response = api.post(name, {"stream_id": sid, "subject": ALICE})
        assert response.status_code == 429
        assert 1 <= int(response["Retry-After"]) <= 60
        assert response.json()["error"] == "too_many_requests"
        assert response["Cache-Control"] == "no-store"
    # Rejected requests change nothing.
    assert Stream.objects.get(stream_id=sid).subjects.get(subject=ALICE).included is False
    # Another stream has its own budget; an unknown stream is still a 404.
    assert api.post("ssf-subjects-add", {"stream_id": other, "subject": ALICE}).status_code == 200
    unknown = api.post("ssf-subjects-add", {"stream_id": "0" * 32, "subject": ALICE})
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_subject_rate_limit_window_resets_and_can_be_turned_off(api, settings):
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_SUBJECT_RATE_LIMIT": "2/m",
    }
    stream = Stream.objects.get(stream_id=create_stream(api)["stream_id"])
    start = 60 * 16_666_666.0  # the beginning of a window
    subject_service.check_subject_rate_limit(stream, now=start)
    subject_service.check_subject_rate_limit(stream, now=start + 1)
    with pytest.raises(stream_errors.SubjectRequestsTooFrequent) as info:
        subject_service.check_subject_rate_limit(stream, now=start + 57.5)
    assert info.value.retry_after == 3 and info.value.status == 429
    subject_service.check_subject_rate_limit(stream, now=start + 60)  # a new window
    settings.SSF = {**settings.SSF, "TRANSMITTER_SUBJECT_RATE_LIMIT": None}
    for _ in range(20):
        assert (
            api.post(
                "ssf-subjects-add", {"stream_id": stream.stream_id, "subject": ALICE}
            ).status_code
            == 200
        )


def test_default_rate_limit_is_generous():
    from django_ssf.conf import DEFAULTS
    from django_ssf.core.ratelimit import parse_rate

    rate = parse_rate(DEFAULTS["TRANSMITTER_SUBJECT_RATE_LIMIT"])
    assert rate.limit / rate.window >= 5


# ---- Appendix A: every operation's success and error codes ------------------------------------
def _operations(sid: str) -> list[tuple[str, str, dict | None, dict | None, int]]:
    """(method, route, JSON body, query, success status) of every control-plane operation."""
    subject = {"stream_id": sid, "subject": ALICE}
    return [
        ("GET", "ssf-streams", None, {"stream_id": sid}, 200),
        ("PATCH", "ssf-streams", {"stream_id": sid, "description": "d"}, None, 200),
        (
            "PUT",
            "ssf-streams",
            {"stream_id": sid, "delivery": {"method": c.DELIVERY_POLL}},
            None,
            200,
        ),
        ("GET", "ssf-status", None, {"stream_id": sid}, 200),
        ("POST", "ssf-status", {"stream_id": sid, "status": "enabled"}, None, 200),
        ("POST", "ssf-subjects-add", subject, None, 200),
        ("POST", "ssf-subjects-remove", subject, None, 204),
        ("POST", "ssf-verify", {"stream_id": sid, "state": "x"}, None, 204),
        ("DELETE", "ssf-streams", None, {"stream_id": sid}, 204),
    ]


@pytest.mark.django_db
def test_appendix_a_status_codes(api, other_api, receiver, signing_key):
    created = api.post("ssf-streams", {})
    assert created.status_code == 201  # create → 201
    sid = created.json()["stream_id"]
    listing = api.get("ssf-streams")
    assert listing.status_code == 200 and isinstance(listing.json(), list)
    assert other_api.get("ssf-streams").json() == []  # [] when none
    no_scope = BearerClient(make_token(receiver, "openid"))
    anonymous = BearerClient(None)
    for method, name, body, query, success in _operations(sid):
        label = f"{method} {name}"
        # 401: no token (RFC 6750 §3.1 challenge without an error code).
        r = anonymous.request(method, name, body, query=query)
        assert r.status_code == 401, label
        assert r["WWW-Authenticate"].startswith("Bearer") and "error=" not in r["WWW-Authenticate"]
        # 403: a token without the SSF scope.
        r = no_scope.request(method, name, body, query=query)
        assert r.status_code == 403, label
        assert 'error="insufficient_scope"' in r["WWW-Authenticate"]
        # 404: another receiver's stream is an unknown stream.
        r = other_api.request(method, name, body, query=query)
        assert r.status_code == 404, label
        # 400: malformed body (or an empty stream_id for query operations).
        if body is not None:
            r = api.request(method, name, raw="{broken", query=query)
        else:
            r = api.request(method, name, query={"stream_id": ""})
        assert r.status_code == 400, label
        assert r.json()["error"] == "invalid_request"
        # Success, with the exact status code of SSF 1.0 (checked last: DELETE is final).
        r = api.request(method, name, body, query=query)
        assert r.status_code == success, (label, r.content)
        assert r["Cache-Control"] == "no-store"
        if success == 204 or name == "ssf-subjects-add":
            assert r.content == b""
    # After DELETE: 404 everywhere.
    assert api.get("ssf-streams", stream_id=sid).status_code == 404
    assert api.get("ssf-status", stream_id=sid).status_code == 404
