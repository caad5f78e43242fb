"""Receiver admin actions need the change permission; view-only staff are offered none."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.helpers.admin import staff_client

pytestmark = pytest.mark.django_db


def test_view_only_staff_are_offered_no_receiver_actions():
    client = staff_client("view_transmitter", "view_receiverstream", "view_inboundset")
    for name in ("transmitter", "receiverstream", "inboundset"):
        response = client.get(reverse(f"admin:ssf_receiver_{name}_changelist"))
        assert response.status_code == 200, name
        assert response.context["action_form"] is None or not [
            choice
            for choice in response.context["action_form"].fields["action"].choices
            if choice[0] and choice[0] != "delete_selected"
        ], name
