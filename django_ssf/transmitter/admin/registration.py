"""Admin of self-service onboarding: initial access tokens and client registrations.

An operator issues an initial access token by adding one here (the token is shown once,
in the confirmation message; only its hash is stored) and approves pending registrations
with the "Approve" action.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ..models import ClientRegistration, InitialAccessToken
from ..registration import approve, issue_initial_access_token


@admin.register(InitialAccessToken)
class InitialAccessTokenAdmin(admin.ModelAdmin):
    list_display = ("__str__", "use_count", "max_uses", "expires_at", "revoked", "created_at")
    fields = ("description", "max_uses", "expires_at", "revoked", "use_count", "created_at")
    readonly_fields = ("use_count", "created_at")
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        expires_in = None
        if obj.expires_at is not None:
            expires_in = max(1, int((obj.expires_at - timezone.now()).total_seconds()))
        row, token = issue_initial_access_token(
            description=obj.description, max_uses=obj.max_uses, expires_in=expires_in
        )
        obj.pk, obj.token_hash, obj.created_at = row.pk, row.token_hash, row.created_at
        obj.expires_at = row.expires_at
        if obj.revoked:
            InitialAccessToken.objects.filter(pk=row.pk).update(revoked=True)
        messages.warning(
            request,
            f"Initial access token (shown only now; give it to the receiver): {token}",
        )

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(revoked=True)
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(ClientRegistration)
class ClientRegistrationAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "client_id",
        "token_endpoint_auth_method",
        "requested_scope",
        "approved_at",
        "created_at",
    )
    list_filter = ("token_endpoint_auth_method",)
    search_fields = ("receiver__application__client_id", "receiver__application__name")
    readonly_fields = (
        "receiver",
        "client_id",
        "metadata",
        "token_endpoint_auth_method",
        "jwks",
        "jwks_uri",
        "requested_scope",
        "initial_access_token",
        "approved_at",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    actions = ["approve_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # receivers register themselves (RFC 7591)

    @admin.display(description="client_id")
    def client_id(self, obj: ClientRegistration) -> str:
        return obj.receiver.application.client_id

    @admin.action(
        description="Approve the selected registrations (grant the requested scopes)",
        permissions=["change"],
    )
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for registration in queryset.filter(approved_at__isnull=True):
            approve(registration)
            count += 1
        self.message_user(request, f"Approved {count} registration(s).")
