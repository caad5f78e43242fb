"""emit(): SET claims, fan-out rules, outbox rows, status semantics, commands, emitters."""

from __future__ import annotations

import json
from io import StringIO

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import RequestFactory

from django_ssf import emit as package_emit
from django_ssf import signals
from django_ssf.core import constants as c
from django_ssf.core.errors import EventValidationError, SubjectError
from django_ssf.events import caep, risc
from django_ssf.transmitter import api, outbox
from django_ssf.transmitter.models import OutboundSET, SubjectOptState
from tests.helpers.transmitter_delivery import (
    EMAIL,
    TEST_KID,
    add_subject,
    decode,
    make_stream,
    ssf_settings_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _static_key(settings):
    ssf_settings_for(settings)


def _poll_stream(**kw):
    return make_stream(method=c.DELIVERY_POLL, **kw)


# ---- the SET itself (checklist §2, Appendix B "Transmitter SET checks") -------------------


def test_emitted_set_passes_every_transmitter_set_check():
    stream = _poll_stream(aud="https://rp.example/aud")
    jtis = api.emit(caep.SessionRevoked(initiating_entity="admin"), EMAIL)
    assert len(jtis) == 1
    row = OutboundSET.objects.get(jti=jtis[0])
    header = jwt.get_unverified_header(row.token)
    assert header["typ"] == c.SET_TYP
    assert header["kid"] == TEST_KID == row.signing_kid
    assert header["alg"] == "RS256"
    claims = decode(row.token, aud="https://rp.example/aud")
    assert claims["iss"] == "https://ssf.test"
    assert claims["aud"] == stream.aud
    assert claims["jti"] == row.jti
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["txn"], str) and claims["txn"] == row.txn
    assert claims["sub_id"] == EMAIL
    assert "sub" not in claims and "exp" not in claims
    assert list(claims["events"]) == [c.CAEP_SESSION_REVOKED]
    assert claims["events"][c.CAEP_SESSION_REVOKED] == {"initiating_entity": "admin"}
    assert row.event_type == c.CAEP_SESSION_REVOKED
    assert row.status == OutboundSET.STATUS_PENDING


def test_one_set_per_stream_with_its_own_audience_and_shared_txn():
    streams = [_poll_stream(aud=f"https://rp{i}.example") for i in range(3)]
    jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, txn="incident-42")
    assert len(jtis) == 3 == len(set(jtis))
    rows = {r.stream_id: r for r in OutboundSET.objects.filter(jti__in=jtis)}
    for stream in streams:
        claims = decode(rows[stream.pk].token, aud=stream.aud)
        assert claims["aud"] == stream.aud  # never several audiences in one SET
        assert claims["txn"] == "incident-42"


def test_txn_generated_once_per_emit():
    _poll_stream()
    _poll_stream()
    jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    txns = {decode(r.token)["txn"] for r in OutboundSET.objects.filter(jti__in=jtis)}
    assert len(txns) == 1
    other = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    assert decode(OutboundSET.objects.get(jti=other[0]).token)["txn"] not in txns


def test_short_names_builders_and_package_level_emit():
    _poll_stream(events=[c.RISC_ACCOUNT_DISABLED])
    assert len(package_emit(("risc.account-disabled", {"reason": "hijacking"}), EMAIL)) == 1
    assert len(api.emit(risc.AccountDisabled(), EMAIL)) == 1


def test_no_streams_is_a_quiet_no_op():
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL) == []
    assert OutboundSET.objects.count() == 0


@pytest.mark.parametrize(
    "subject",
    [{"format": "email"}, {"format": "nope", "x": "y"}, "alice@example.com", {}],
)
def test_bad_subject_raises_subject_error_and_writes_nothing(subject):
    _poll_stream()
    with pytest.raises(SubjectError):
        api.emit((c.CAEP_SESSION_REVOKED, {}), subject)
    assert OutboundSET.objects.count() == 0


@pytest.mark.parametrize(
    "event",
    [
        (c.CAEP_CREDENTIAL_CHANGE, {"credential_type": "password"}),  # change_type missing
        (c.CAEP_SESSION_REVOKED, {"initiating_entity": "robot"}),
        (c.CAEP_SESSION_REVOKED, []),
        ("caep.no-such-event", {}),
        "not an event",
    ],
)
def test_bad_event_raises_event_validation_error(event):
    _poll_stream(events=[c.CAEP_SESSION_REVOKED, c.CAEP_CREDENTIAL_CHANGE])
    with pytest.raises(EventValidationError):
        api.emit(event, EMAIL)
    assert OutboundSET.objects.count() == 0


def test_control_events_cannot_be_emitted_and_txn_must_be_a_string():
    _poll_stream(events=[c.EVENT_VERIFICATION, c.CAEP_SESSION_REVOKED])
    with pytest.raises(EventValidationError):
        api.emit((c.EVENT_VERIFICATION, {}), EMAIL)
    with pytest.raises(EventValidationError):
        api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, txn=42)  # type: ignore[arg-type]


def test_identifier_changed_needs_email_or_phone_subject():
    _poll_stream(events=[c.RISC_IDENTIFIER_CHANGED])
    with pytest.raises(EventValidationError):
        api.emit((c.RISC_IDENTIFIER_CHANGED, {}), {"format": "opaque", "id": "x"})


# ---- fan-out rules (SSF §8.1.3.1, checklist §3.5) -----------------------------------------


def test_only_streams_delivering_the_type_and_not_disabled():
    wants = _poll_stream(events=[c.CAEP_SESSION_REVOKED])
    _poll_stream(events=[c.CAEP_CREDENTIAL_CHANGE])
    _poll_stream(events=[])
    disabled = _poll_stream(status=c.STATUS_DISABLED)
    jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    assert [r.stream_id for r in OutboundSET.objects.filter(jti__in=jtis)] == [wants.pk]
    assert not OutboundSET.objects.filter(stream=disabled).exists()  # disabled drops


def test_default_subjects_all_none_added_and_removed():
    all_stream = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_ALL)
    none_stream = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE)
    none_added = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE)
    add_subject(none_added, {"format": "email", "email": "Alice@Example.com"})  # canonical
    all_removed = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_ALL)
    add_subject(all_removed, EMAIL, included=False)
    none_added_removed = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE)
    add_subject(none_added_removed, EMAIL, included=False)

    jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    got = set(OutboundSET.objects.filter(jti__in=jtis).values_list("stream_id", flat=True))
    assert got == {all_stream.pk, none_added.pk}
    assert none_stream.pk not in got


def test_complex_subject_wildcard_matching():
    tenant = {"format": "opaque", "id": "tenant-T"}
    user = EMAIL
    by_tenant = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE)
    add_subject(by_tenant, {"format": "complex", "tenant": tenant})
    by_user_device = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE)
    add_subject(
        by_user_device,
        {"format": "complex", "user": user, "device": {"format": "opaque", "id": "D"}},
    )
    other_group = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE)
    add_subject(
        other_group,
        {"format": "complex", "user": user, "group": {"format": "opaque", "id": "G1"}},
    )
    simple_user = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE)
    add_subject(simple_user, user)

    event_subject = {
        "format": "complex",
        "tenant": tenant,
        "user": user,
        "group": {"format": "opaque", "id": "G2"},
    }
    jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), event_subject)
    got = set(OutboundSET.objects.filter(jti__in=jtis).values_list("stream_id", flat=True))
    # {tenant:T} ⊂ event → match; {user, device} vs event without device → match;
    # {user, group:G1} vs group:G2 → no match; simple user = one member → match.
    assert got == {by_tenant.pk, by_user_device.pk, simple_user.pk}


def test_removed_complex_subject_excludes_from_all_stream():
    tenant = {"format": "opaque", "id": "tenant-T"}
    stream = _poll_stream()
    add_subject(stream, {"format": "complex", "tenant": tenant}, included=False)
    subject = {"format": "complex", "tenant": tenant, "user": EMAIL}
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), subject) == []
    assert len(api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)) == 1


def test_streams_argument_restricts_the_fan_out():
    a = _poll_stream()
    _poll_stream()
    jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, streams=[a])
    assert list(OutboundSET.objects.filter(jti__in=jtis).values_list("stream_id", flat=True)) == [
        a.pk
    ]


def test_risc_opt_out_state_machine():
    stream = _poll_stream(events=[c.CAEP_SESSION_REVOKED, *c.RISC_OPT_EVENTS])
    assert api.emit(risc.OptOutInitiated(), EMAIL)
    # Grace period: events keep flowing while opt-out is only initiated (RISC §2.8.2).
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    assert api.emit(risc.OptOutEffective(), EMAIL)  # the opt event itself is delivered
    state = SubjectOptState.objects.get()
    assert state.state == SubjectOptState.STATE_OPT_OUT
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL) == []  # opted out: nothing
    other = {"format": "email", "email": "bob@example.com"}
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), other)  # other subjects unaffected
    assert api.emit(risc.OptIn(), EMAIL)
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    assert OutboundSET.objects.filter(stream=stream).count() == 6


def test_opt_out_applies_to_complex_subject_containing_the_user():
    _poll_stream()
    api.set_opt_state(EMAIL, SubjectOptState.STATE_OPT_OUT)
    subject = {"format": "complex", "user": EMAIL, "device": {"format": "opaque", "id": "d"}}
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), subject) == []
    with pytest.raises(ValueError):
        api.set_opt_state(EMAIL, "maybe")


def test_fan_out_is_bulk(django_assert_max_num_queries):
    for i in range(50):
        s = _poll_stream(default_subjects=c.DEFAULT_SUBJECTS_NONE if i % 2 else "ALL")
        if i % 2:
            add_subject(s, EMAIL)
    api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)  # warm caches (key handle, registry)
    # Inline fan-out (tests/settings.py): the event row, then one chunk (lock the event,
    # streams, subject rows, ordering guard, insert, cursor) plus savepoints; constant in
    # the number of streams.
    with django_assert_max_num_queries(14):
        jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    assert len(jtis) == 50


# ---- outbox and transactions --------------------------------------------------------------


def test_rollback_emits_nothing(django_capture_on_commit_callbacks):
    _poll_stream()
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
                raise RuntimeError("host failure")
    assert OutboundSET.objects.count() == 0
    assert callbacks == []


def test_push_delivery_is_enqueued_on_commit_once_per_stream(
    django_capture_on_commit_callbacks, monkeypatch
):
    calls = []
    from django_ssf.transmitter import tasks

    monkeypatch.setattr(tasks.deliver_stream, "delay", lambda pk: calls.append(pk))
    push = make_stream(endpoint_url="https://rp.example/events")
    _poll_stream()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
            api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
            assert calls == []  # nothing before commit
    for cb in callbacks:
        cb()
    assert calls == [push.pk, push.pk]


def test_set_emitted_signal_after_commit(django_capture_on_commit_callbacks):
    _poll_stream()
    seen = []

    def receiver(sender, **kw):
        seen.append(kw)

    signals.set_emitted.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            jtis = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, txn="t1")
    finally:
        signals.set_emitted.disconnect(receiver)
    assert seen and seen[0]["jtis"] == jtis and seen[0]["txn"] == "t1"
    assert seen[0]["event_type"] == c.CAEP_SESSION_REVOKED


# ---- paused / disabled / retention (SSF §8.1.2.1) -----------------------------------------


def test_paused_holds_and_enable_releases_in_order(django_capture_on_commit_callbacks):
    stream = _poll_stream(status=c.STATUS_PAUSED)
    jtis = [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(3)]
    assert set(OutboundSET.objects.values_list("status", flat=True)) == {"held"}
    stream.status = c.STATUS_ENABLED
    stream.save()
    with django_capture_on_commit_callbacks(execute=True):
        outbox.apply_status_change(stream, c.STATUS_PAUSED, c.STATUS_ENABLED)
    rows = list(OutboundSET.objects.filter(stream=stream).order_by("id"))
    assert [r.jti for r in rows] == jtis
    assert {r.status for r in rows} == {OutboundSET.STATUS_PENDING}


def test_pause_holds_pending_but_not_control_events():
    stream = _poll_stream()
    api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    updated = api.send_stream_updated(stream, c.STATUS_PAUSED, "maintenance")
    stream.status = c.STATUS_PAUSED
    stream.save()
    outbox.apply_status_change(stream, c.STATUS_ENABLED, c.STATUS_PAUSED)
    statuses = dict(OutboundSET.objects.values_list("event_type", "status"))
    assert statuses[c.CAEP_SESSION_REVOKED] == OutboundSET.STATUS_HELD
    assert statuses[c.EVENT_STREAM_UPDATED] == OutboundSET.STATUS_PENDING
    claims = decode(updated.token)
    assert claims["sub_id"] == {"format": "opaque", "id": stream.stream_id}
    assert claims["events"] == {
        c.EVENT_STREAM_UPDATED: {"status": "paused", "reason": "maintenance"}
    }


def test_disable_drops_everything_but_the_announcement():
    stream = _poll_stream(status=c.STATUS_PAUSED)
    api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    stream.status = c.STATUS_ENABLED
    api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    api.send_stream_updated(stream, c.STATUS_DISABLED, None)
    stream.status = c.STATUS_DISABLED
    stream.save()
    outbox.apply_status_change(stream, c.STATUS_PAUSED, c.STATUS_DISABLED)
    statuses = sorted(OutboundSET.objects.values_list("event_type", "status"))
    assert statuses == sorted(
        [
            (c.CAEP_SESSION_REVOKED, "dropped"),
            (c.CAEP_SESSION_REVOKED, "dropped"),
            (c.EVENT_STREAM_UPDATED, "pending"),
        ]
    )
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL) == []


def test_paused_retention_count_bound_drops_oldest(settings):
    ssf_settings_for(settings, TRANSMITTER_PAUSED_RETENTION_MAX_EVENTS=3)
    stream = _poll_stream(status=c.STATUS_PAUSED)
    jtis = [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(5)]
    held = list(
        OutboundSET.objects.filter(stream=stream, status="held")
        .order_by("id")
        .values_list("jti", flat=True)
    )
    assert held == jtis[2:]
    dropped = OutboundSET.objects.filter(status="dropped")
    assert dropped.count() == 2 and {r.last_error_code for r in dropped} == {"retention_exceeded"}


def test_verification_set_shapes():
    stream = _poll_stream()
    solicited = api.send_verification(stream, "abc")
    unsolicited = api.send_verification(stream, None)
    a, b = decode(solicited.token), decode(unsolicited.token)
    assert a["events"] == {c.EVENT_VERIFICATION: {"state": "abc"}}
    assert b["events"] == {c.EVENT_VERIFICATION: {}}  # unsolicited: no state
    for claims in (a, b):
        assert claims["sub_id"] == {"format": "opaque", "id": stream.stream_id}
        assert claims["aud"] == stream.aud and isinstance(claims["txn"], str)
    stream.status = c.STATUS_PAUSED
    assert api.send_verification(stream, "x").status == OutboundSET.STATUS_HELD
    stream.status = c.STATUS_DISABLED
    assert api.send_verification(stream, "x").status == OutboundSET.STATUS_DROPPED
    with pytest.raises(ValueError):
        api.send_stream_updated(stream, "sleeping", None)


def test_status_change_through_control_plane_service(django_capture_on_commit_callbacks):
    from django_ssf.transmitter.status import set_status

    stream = _poll_stream()
    api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    set_status(stream, c.STATUS_PAUSED, "idle", initiator="transmitter")
    assert OutboundSET.objects.filter(status="held").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        set_status(stream, c.STATUS_ENABLED, None, initiator="transmitter")
    kinds = list(OutboundSET.objects.order_by("id").values_list("event_type", "status"))
    assert kinds == [
        (c.CAEP_SESSION_REVOKED, "pending"),
        (c.EVENT_STREAM_UPDATED, "pending"),
        (c.EVENT_STREAM_UPDATED, "pending"),
    ]


# ---- ssf_emit command ---------------------------------------------------------------------


def test_ssf_emit_command_prints_jtis_and_txn():
    stream = _poll_stream(events=[c.CAEP_CREDENTIAL_CHANGE])
    out = StringIO()
    call_command(
        "ssf_emit",
        "caep.credential-change",
        "--subject",
        json.dumps(EMAIL),
        "--claims",
        json.dumps({"credential_type": "password", "change_type": "update", "x-extra": 1}),
        "--txn",
        "op-1",
        stdout=out,
    )
    result = json.loads(out.getvalue())
    assert result["txn"] == "op-1" and result["event_type"] == c.CAEP_CREDENTIAL_CHANGE
    (jti,) = result["jtis"]
    claims = decode(OutboundSET.objects.get(jti=jti, stream=stream).token)
    assert claims["txn"] == "op-1"
    assert claims["events"][c.CAEP_CREDENTIAL_CHANGE]["x-extra"] == 1  # passed through


@pytest.mark.parametrize(
    "args",
    [
        ["caep.nope", "--subject", json.dumps(EMAIL)],
        ["caep.session-revoked", "--subject", "{not json"],
        ["caep.session-revoked", "--subject", json.dumps({"format": "email"})],
        ["caep.session-revoked", "--subject", json.dumps(EMAIL), "--claims", "[]"],
        ["caep.credential-change", "--subject", json.dumps(EMAIL), "--claims", "{}"],
        ["caep.session-revoked", "--subject", json.dumps(EMAIL), "--stream", "missing"],
    ],
)
def test_ssf_emit_command_errors(args):
    with pytest.raises(CommandError):
        call_command("ssf_emit", *args, stdout=StringIO())


# ---- auth-signal emitters -----------------------------------------------------------------


@pytest.fixture
def auth_stream():
    return _poll_stream(
        events=[c.CAEP_SESSION_REVOKED, c.CAEP_CREDENTIAL_CHANGE, c.RISC_ACCOUNT_DISABLED]
    )


def _user(email="alice@example.com"):
    return get_user_model().objects.create_user("alice", email=email, password="old-pass-1")


def test_auth_emitters_off_by_default(auth_stream):
    user = _user()
    user.set_password("new-pass-2")
    user.is_active = False
    user.save()
    user_logged_out.send(sender=type(user), request=None, user=user)
    assert OutboundSET.objects.count() == 0


def test_auth_emitters_logout_password_deactivation(settings, auth_stream):
    ssf_settings_for(settings, TRANSMITTER_AUTH_SIGNAL_EMITTERS=True)
    user = _user()
    assert OutboundSET.objects.count() == 0  # creating a user is not a credential change

    request = RequestFactory().get("/")
    user_logged_out.send(sender=type(user), request=request, user=user)
    user.set_password("new-pass-2")
    user.save()
    user.last_login = None
    user.save(update_fields=["last_login"])  # unrelated save: nothing
    user.is_active = False
    user.save()
    user.save()  # still inactive: no second account-disabled

    rows = list(OutboundSET.objects.order_by("id"))
    events = [decode(r.token)["events"] for r in rows]
    assert [next(iter(e)) for e in events] == [
        c.CAEP_SESSION_REVOKED,
        c.CAEP_CREDENTIAL_CHANGE,
        c.RISC_ACCOUNT_DISABLED,
    ]
    revoked = events[0][c.CAEP_SESSION_REVOKED]
    assert revoked["initiating_entity"] == "user" and isinstance(revoked["event_timestamp"], int)
    change = events[1][c.CAEP_CREDENTIAL_CHANGE]
    assert change["credential_type"] == "password" and change["change_type"] == "update"
    assert all(decode(r.token)["sub_id"] == EMAIL for r in rows)


def test_auth_emitters_selected_by_name_and_subject_modes(settings, auth_stream):
    ssf_settings_for(
        settings, TRANSMITTER_AUTH_SIGNAL_EMITTERS=["logout"], TRANSMITTER_USER_SUBJECT="iss_sub"
    )
    user = _user()
    user.set_password("x-new-pass")
    user.save()
    assert OutboundSET.objects.count() == 0  # password emitter not selected
    user_logged_out.send(sender=type(user), request=None, user=user)
    (row,) = OutboundSET.objects.all()
    assert decode(row.token)["sub_id"] == {
        "format": "iss_sub",
        "iss": "https://ssf.test",
        "sub": str(user.pk),
    }
    ssf_settings_for(
        settings,
        TRANSMITTER_AUTH_SIGNAL_EMITTERS=True,
        TRANSMITTER_USER_SUBJECT="tests.helpers.pluggable.opaque_subject",
    )
    user_logged_out.send(sender=type(user), request=None, user=user)
    assert decode(OutboundSET.objects.order_by("-id")[0].token)["sub_id"] == {
        "format": "opaque",
        "id": f"user-{user.pk}",
    }


def test_auth_emitters_skip_users_without_subject_and_anonymous_logout(settings, auth_stream):
    ssf_settings_for(settings, TRANSMITTER_AUTH_SIGNAL_EMITTERS=True)
    user = _user(email="")
    user_logged_out.send(sender=type(user), request=None, user=user)
    user_logged_out.send(sender=type(user), request=None, user=None)
    assert OutboundSET.objects.count() == 0


def test_auth_emitters_are_no_ops_without_streams(settings):
    ssf_settings_for(settings, TRANSMITTER_AUTH_SIGNAL_EMITTERS=True)
    user = _user()
    user.set_password("new-pass-3")
    user.save()
    user_logged_out.send(sender=type(user), request=None, user=user)
    assert OutboundSET.objects.count() == 0


def test_real_key_provider_signs_with_the_active_database_key(settings):
    settings.SSF = {k: v for k, v in settings.SSF.items() if k != "KEYS_PROVIDER"}
    from django_ssf.keys.keystore import get_key_provider, jwks

    _poll_stream()
    (jti,) = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    row = OutboundSET.objects.get(jti=jti)
    assert row.signing_kid == get_key_provider().signing_key().kid
    published = {k["kid"]: k for k in jwks()["keys"]}
    key = jwt.PyJWK(published[row.signing_kid])
    claims = jwt.decode(row.token, key.key, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["jti"] == jti
