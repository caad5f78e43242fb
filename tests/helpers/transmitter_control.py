"""Helpers for the transmitter control-plane tests: receivers, tokens, a bearer client.

The fixtures built on them (``receiver``, ``api``, ...) live in the conftest.py files.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from django_ssf.transmitter.models import ReceiverClient

Application = get_application_model()
AccessToken = get_access_token_model()

FULL_SCOPE = "ssf.read ssf.manage"


def make_receiver(name: str = "receiver", scopes: str = FULL_SCOPE) -> Any:
    app = Application.objects.create(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    ReceiverClient.objects.create(application=app, allowed_scopes=scopes)
    return app


def make_token(app: Any, scope: str = FULL_SCOPE, *, expires_in: int = 3600) -> str:
    value = secrets.token_urlsafe(24)
    AccessToken.objects.create(
        application=app,
        token=value,
        scope=scope,
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    return value


class BearerClient:
    """A Django test client that sends a bearer token and JSON bodies."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers

    def request(
        self,
        method: str,
        name: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ):
        path = reverse(name)
        if query:
            from urllib.parse import urlencode

            path += "?" + urlencode(query)
        data: Any
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body)
        else:
            data = ""
        return self.client.generic(
            method, path, data=data, content_type=content_type, headers=self._headers(headers)
        )

    def get(self, name: str, **query: str):
        return self.request("GET", name, query=query or None)

    def post(self, name: str, body: Any = None, **kw: Any):
        return self.request("POST", name, body, **kw)

    def patch(self, name: str, body: Any = None, **kw: Any):
        return self.request("PATCH", name, body, **kw)

    def put(self, name: str, body: Any = None, **kw: Any):
        return self.request("PUT", name, body, **kw)

    def delete(self, name: str, **query: str):
        return self.request("DELETE", name, query=query or None)


def create_stream(api: BearerClient, body: dict | None = None) -> dict:
    response = api.post("ssf-streams", body or {})
    assert response.status_code == 201, response.content
    return response.json()
