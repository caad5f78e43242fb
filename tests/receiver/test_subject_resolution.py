"""Which local user a received subject means: subject namespaces per transmitter (RFC 8935 §2),
complex subjects with unknown member formats and the processable members (SSF §3.6).
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model

from django_ssf.conf import DEFAULTS
from django_ssf.receiver.models import (
    InboundSET,
)
from tests.helpers.fake_transmitter import (
    ACCOUNT_DISABLED,
    SESSION_REVOKED,
    make_stream,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


# ---- subject namespaces (RFC 8935 §2, checklist §8.2) -------------------------------------


@pytest.mark.requires_apps("django_ssf.transmitter")  # this site's own issuer
def test_foreign_transmitter_cannot_disable_our_superuser_by_pk(client, fake, inline_processing):
    admin = get_user_model().objects.create_superuser("root", "root@corp.example", "pw")
    stream = make_stream(fake)  # a partner transmitter, issuer != ours
    assert fake.issuer != django_settings.SSF["TRANSMITTER_ISSUER"]
    sub_id = {
        "format": "iss_sub", "iss": django_settings.SSF["TRANSMITTER_ISSUER"], "sub": str(admin.pk)
    }
    token = fake.make_set(ACCOUNT_DISABLED, {"reason": "hijacking"}, sub_id=sub_id)
    assert post_set(client, stream, token).status_code == 202
    admin.refresh_from_db()
    assert admin.is_active, "a foreign transmitter deactivated our superuser by its pk"
    assert InboundSET.objects.get().actions.get().action == "resolve_subject"


def test_foreign_iss_sub_is_matched_only_in_the_transmitters_namespaces(
    client, fake, inline_processing, settings
):
    settings.SSF = {**settings.SSF, "RECEIVER_ISS_SUB_FIELD": "username"}
    root = get_user_model().objects.create_superuser("root", "root@corp.example", "pw")
    stream = make_stream(fake)
    other = {"format": "iss_sub", "iss": "https://some-other-idp.example", "sub": "root"}
    assert post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {},
                                                  sub_id=other)).status_code == 202
    root.refresh_from_db()
    assert root.is_active, "iss_sub of an unrelated issuer resolved to our local 'root'"
    # The transmitter's own issuer is its namespace.
    own = {"format": "iss_sub", "iss": fake.issuer, "sub": "root"}
    assert post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {},
                                                  sub_id=own)).status_code == 202
    root.refresh_from_db()
    assert not root.is_active


@pytest.mark.requires_apps("django_ssf.transmitter")  # this site's own issuer
def test_allowed_subject_issuer_and_trusted_own_issuer(client, fake, inline_processing,
                                                        settings):
    settings.SSF = {**settings.SSF, "RECEIVER_ISS_SUB_FIELD": "username"}
    bob = get_user_model().objects.create_user("bob", "bob@example.com", "pw")
    stream = make_stream(fake, subject_issuers=["https://hr.example"],
                         trust_own_issuer_subjects=True)
    listed = {"format": "iss_sub", "iss": "https://hr.example", "sub": "bob"}
    post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {}, sub_id=listed))
    bob.refresh_from_db()
    assert not bob.is_active
    bob.is_active = True
    bob.save()
    ours = {
        "format": "iss_sub", "iss": django_settings.SSF["TRANSMITTER_ISSUER"], "sub": str(bob.pk)
    }
    post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {}, sub_id=ours))
    bob.refresh_from_db()
    assert not bob.is_active


# ---- complex subjects with unknown member formats (SSF §3.6) -----------------------------

USER = {"format": "email", "email": "alice@example.com"}
VENDOR_DEVICE = {"format": "x-vendor-device", "serial": "ABC-123"}


def test_unknown_format_in_non_critical_member_does_not_reject_the_event(client, fake,
                                                                        inline_processing):
    alice = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    stream = make_stream(fake)
    sub_id = {"format": "complex", "user": USER, "device": VENDOR_DEVICE}
    response = post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {}, sub_id=sub_id))
    assert response.status_code == 202, response.content
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_PROCESSED
    assert row.subject == sub_id  # stored as received
    alice.refresh_from_db()
    assert not alice.is_active  # best effort on the member we know


def test_unknown_format_in_critical_member_is_discarded_not_rejected(client, fake):
    stream = make_stream(fake)
    transmitter = stream.transmitter
    transmitter.metadata = {**transmitter.metadata, "critical_subject_members": ["device"]}
    transmitter.save()
    settings_members = ["user", "device"]  # even a processable name: the format is unknown
    from django.test import override_settings

    with override_settings(SSF={**django_settings.SSF,
                                "RECEIVER_PROCESSABLE_SUBJECT_MEMBERS": settings_members}):
        sub_id = {"format": "complex", "user": USER, "device": VENDOR_DEVICE}
        response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=sub_id))
    assert response.status_code == 202, response.content
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_DISCARDED
    assert "device" in row.error_description


def test_unknown_top_level_format_is_still_invalid_request(client, fake):
    stream = make_stream(fake)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=VENDOR_DEVICE))
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"


def test_malformed_known_member_is_still_invalid_request(client, fake):
    stream = make_stream(fake)
    sub_id = {"format": "complex", "user": {"format": "email"}, "device": VENDOR_DEVICE}
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=sub_id))
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"


# ---- RECEIVER_PROCESSABLE_SUBJECT_MEMBERS default (SSF §3.6)
# ---------------------------------------


def test_processable_members_default_is_what_the_builtin_resolver_uses():
    assert DEFAULTS["RECEIVER_PROCESSABLE_SUBJECT_MEMBERS"] == ["user"]


def test_unprocessed_critical_tenant_member_discards_the_event(client, fake, inline_processing):
    get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    stream = make_stream(fake)
    transmitter = stream.transmitter
    transmitter.metadata = {**transmitter.metadata, "critical_subject_members": ["tenant"]}
    transmitter.save()
    sub_id = {"format": "complex",
              "user": {"format": "email", "email": "alice@example.com"},
              "tenant": {"format": "opaque", "id": "tenant-of-another-customer"}}
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": int(time.time())}, sub_id=sub_id)
    assert post_set(client, stream, token).status_code == 202
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_DISCARDED
    assert not row.actions.exists()
