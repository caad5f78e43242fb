"""End-to-end: an IdP and a SaaS app, each transmitter and receiver, on real infrastructure.

Two live sites (subprocess web servers), real Celery workers with beat on Redis, one
database each (PostgreSQL when ``DATABASE_URL`` is PostgreSQL). The module-scoped
``deployment`` fixture connects them both ways over the HTTP control plane (app ← IdP by
push, IdP ← app by poll) and verifies both streams; the tests then run in file order:

1. the demo scenario in both directions (session revoked at one side ends it at the other);
2. a receiver outage: the app's web server is down while the IdP emits; the IdP retries,
   every SET arrives once, none is processed twice;
3. key rotation at the IdP mid-stream: SETs signed with the new keys are accepted;
4. a paused stream holds its SETs and, once enabled, delivers them in order.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from example_project.demo import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DEMO_PASSWORD,
    DEMO_USER,
    SESSION_REVOKED,
    Demo,
    Site,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

WAIT = 90  # seconds: the bound of every wait for a delivery


# ---- helpers -------------------------------------------------------------------------
def sent_sets(site: Site, admin: requests.Session) -> dict[str, dict[str, Any]]:
    """The site's outbound SETs by jti, from its dashboard JSON (staff session)."""
    response = admin.get(site.url("/ssf/dashboard.json"), params={"limit": 500}, timeout=10)
    response.raise_for_status()
    return {row["jti"]: row for row in response.json()["sent"]}


def inbox_rows(site: Site, jtis: list[str]) -> list[dict[str, Any]]:
    """Inbox rows (newest first) whose jti is one of ``jtis``, duplicates included."""
    wanted = set(jtis)
    return [row for row in site.inbox(limit=1000) if row.get("jti") in wanted]


def wait_all_processed(site: Site, jtis: list[str]) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        rows = inbox_rows(site, jtis)
        rejected = [row for row in rows if row.get("status") == "rejected"]
        assert not rejected, f"{site.key} rejected SETs: {rejected}"
        processed = {row["jti"] for row in rows if row.get("status") == "processed"}
        return rows if processed >= set(jtis) else None

    return wait_until(done, WAIT, f"{site.title} to process {len(jtis)} SETs", interval=0.5)


def assert_processed_once(rows: list[dict[str, Any]], jtis: list[str]) -> None:
    """Each jti has exactly one original row, processed; any others are duplicates."""
    for jti in jtis:
        originals = [row for row in rows if row["jti"] == jti and row["status"] != "duplicate"]
        assert len(originals) == 1, f"{jti} stored {len(originals)} times: {originals}"
        assert originals[0]["status"] == "processed", originals[0]


def control_plane_token(demo: Demo) -> str:
    """An access token of the app's client at the IdP (client credentials)."""
    client = demo.app_client
    response = requests.post(
        client["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "ssf.read ssf.manage"},
        auth=(client["client_id"], client["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def set_status(demo: Demo, status: str) -> None:
    """Change the app's stream at the IdP the way a receiver does (SSF §8.1.2.2)."""
    discovery = requests.get(demo.idp.url("/.well-known/ssf-configuration"), timeout=10).json()
    response = requests.post(
        discovery["status_endpoint"],
        json={"stream_id": demo.app_stream["stream_id"], "status": status, "reason": "e2e"},
        headers={"Authorization": f"Bearer {control_plane_token(demo)}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status


@pytest.fixture(scope="module")
def idp_admin(deployment: Demo) -> requests.Session:
    return deployment.idp.login(ADMIN_USER, ADMIN_PASSWORD)


# ---- the scenario --------------------------------------------------------------------
def test_both_streams_are_connected_and_verified(deployment: Demo) -> None:
    app_streams = deployment.app.manage_json("ssf_streams", "--json")
    idp_streams = deployment.idp.manage_json("ssf_streams", "--json")
    (app_stream,) = [s for s in app_streams if s["stream_id"] == deployment.app_stream["stream_id"]]
    (idp_stream,) = [s for s in idp_streams if s["stream_id"] == deployment.idp_stream["stream_id"]]
    assert app_stream["issuer"] == deployment.idp.issuer
    assert app_stream["delivery_method"] == "urn:ietf:rfc:8935"
    assert idp_stream["issuer"] == deployment.app.issuer
    assert idp_stream["delivery_method"] == "urn:ietf:rfc:8936"
    for stream in (app_stream, idp_stream):
        assert stream["status"] == "enabled"
        assert stream["last_verified_at"]


def test_session_revoked_at_the_idp_ends_the_app_session(deployment: Demo) -> None:
    deployment.forward(timeout=WAIT)


def test_session_revoked_at_the_app_ends_the_idp_session(deployment: Demo) -> None:
    deployment.reverse(timeout=WAIT)


def test_a_session_started_after_the_event_survives(deployment: Demo) -> None:
    """CAEP session-revoked ends only sessions started before ``event_timestamp``."""
    idp, app = deployment.idp, deployment.app
    jtis = idp.emit(SESSION_REVOKED, deployment.subject)
    wait_all_processed(app, jtis)
    # The event is processed; a session that starts now is younger than its timestamp.
    browser = app.login(DEMO_USER, DEMO_PASSWORD)
    assert app.whoami(browser)["authenticated"]


def test_receiver_outage_loses_nothing_and_processes_nothing_twice(
    deployment: Demo, idp_admin: requests.Session
) -> None:
    idp, app = deployment.idp, deployment.app
    app.stop("web")
    try:
        jtis = [
            idp.emit(SESSION_REVOKED, deployment.subject, txn=f"outage-{n}")[0] for n in range(3)
        ]

        def head_retried_rest_waiting() -> bool:
            # A push stream is drained in order: the head SET is retried, the rest queue
            # behind it (SSF §8.1.2.1 keeps per-subject order).
            rows = sent_sets(idp, idp_admin)
            if not all(jti in rows for jti in jtis):
                return False
            return rows[jtis[0]]["attempts"] >= 2 and all(
                rows[jti]["status"] == "pending" for jti in jtis
            )

        # The IdP tried, failed to connect, retried, and keeps every SET for later.
        wait_until(head_retried_rest_waiting, WAIT, "the IdP to retry the failed push")
        assert not inbox_rows(app, jtis)
    finally:
        app.start_web()

    rows = wait_all_processed(app, jtis)
    assert_processed_once(rows, jtis)

    def all_delivered() -> bool:
        rows = sent_sets(idp, idp_admin)
        return all(rows[jti]["status"] == "delivered" for jti in jtis)

    wait_until(all_delivered, WAIT, "the IdP to record the deliveries")
    # Quiet period: a late retry of an already delivered SET would show up here.
    time.sleep(2.0)
    assert_processed_once(inbox_rows(app, jtis), jtis)


def test_key_rotation_at_the_idp_mid_stream(deployment: Demo, idp_admin: requests.Session) -> None:
    idp, app = deployment.idp, deployment.app
    kids = []
    for round_no in range(3):
        if round_no:
            idp.manage("ssf_keys", "rotate", "--json")
        (jti,) = idp.emit(SESSION_REVOKED, deployment.subject, txn=f"rotation-{round_no}")
        rows = wait_all_processed(app, [jti])
        assert_processed_once(rows, [jti])
        kids.append(sent_sets(idp, idp_admin)[jti]["kid"])
    # Two rotations: the second signs with a key the app had never seen before it.
    assert kids[0] != kids[1] != kids[2] and kids[0] != kids[2], kids


def test_paused_stream_catches_up_in_order(deployment: Demo, idp_admin: requests.Session) -> None:
    idp, app = deployment.idp, deployment.app
    set_status(deployment, "paused")
    try:
        jtis = [
            idp.emit(SESSION_REVOKED, deployment.subject, txn=f"paused-{n}")[0] for n in range(5)
        ]

        def all_held() -> bool:
            rows = sent_sets(idp, idp_admin)
            return all(rows.get(jti, {}).get("status") == "held" for jti in jtis)

        wait_until(all_held, WAIT, "the IdP to hold the SETs of the paused stream")
        assert not inbox_rows(app, jtis), "a paused stream delivered"
    finally:
        set_status(deployment, "enabled")

    rows = wait_all_processed(app, jtis)
    assert_processed_once(rows, jtis)
    originals = [row for row in rows if row["status"] != "duplicate"]
    arrival_order = [row["jti"] for row in reversed(originals)]  # the inbox is newest first
    assert arrival_order == jtis
