"""Admin for signing and encryption keys: read-only key material, lifecycle actions.

Private keys are never shown. Keys are created, rotated and retired through the same
service functions as the ``ssf_keys`` command (:mod:`django_ssf.keys.keystore`). Every action
needs the model's *change* permission: view-only staff are not offered them.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from ..core.errors import SSFKeyError
from . import client_keys, keystore
from .models import ClientKey, EncryptionKey, SigningKey


class GlobalActionsMixin:
    """Let some actions run with no row selected (they act on the key store as a whole)."""

    global_actions: tuple[str, ...] = ()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict | None = None
    ) -> HttpResponse:
        if (
            request.method == "POST"
            and request.POST.get("action") in self.global_actions
            and not request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        ):
            # Django runs an action only with a selection; "select across" makes it act
            # on the whole (possibly empty) queryset, which these actions ignore anyway.
            post = request.POST.copy()
            post["select_across"] = "1"
            post.setlist(helpers.ACTION_CHECKBOX_NAME, ["0"])
            # The stubs type POST as immutable; Django lets a view replace it.
            request.POST = post  # type: ignore[assignment]
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


def _pretty_jwk(obj: SigningKey | EncryptionKey | ClientKey) -> str:
    return format_html("<pre>{}</pre>", json.dumps(obj.public_jwk, indent=2, sort_keys=True))


@admin.register(SigningKey)
class SigningKeyAdmin(GlobalActionsMixin, admin.ModelAdmin):
    list_display = ("kid", "alg", "state", "published", "created_at", "activated_at",
                    "retired_at")
    list_filter = ("state", "alg")
    search_fields = ("kid",)
    ordering = ("-created_at",)
    fields = (
        "kid",
        "alg",
        "state",
        "public_jwk_display",
        "created_at",
        "activated_at",
        "retired_at",
    )
    readonly_fields = fields
    actions = ("rotate_keys", "generate_next_key", "retire_keys")
    global_actions = ("rotate_keys", "generate_next_key")

    @admin.display(description="in the JWKS", boolean=True)
    def published(self, obj: SigningKey) -> bool:
        return obj.state in SigningKey.PUBLISHED_STATES

    @admin.display(description="public JWK")
    def public_jwk_display(self, obj: SigningKey) -> str:
        return _pretty_jwk(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are generated, never typed in

    def has_delete_permission(self, request: HttpRequest, obj: SigningKey | None = None) -> bool:
        return False  # deleting a published key breaks verification; retire it instead

    @admin.action(permissions=["change"], description="Rotate signing keys (promote the next key)")
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            row = keystore.rotate()
        except SSFKeyError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Active signing key is now {row.kid} ({row.alg}).")

    @admin.action(
        permissions=["change"],
        description="Publish a new next key (in the JWKS now, signs after the next rotation)",
    )
    def generate_next_key(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            row = keystore.generate_signing_key()
        except SSFKeyError as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"Generated next signing key {row.kid} ({row.alg}).")

    @admin.action(
        permissions=["change"],
        description="Retire selected keys (refused while SETs are undelivered)",
    )
    def retire_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        for row in queryset:
            try:
                keystore.retire(row.kid)
            except SSFKeyError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"Retired key {row.kid}.")


@admin.register(EncryptionKey)
class EncryptionKeyAdmin(GlobalActionsMixin, admin.ModelAdmin):
    list_display = ("kid", "alg", "active", "created_at")
    list_filter = ("active", "alg")
    search_fields = ("kid",)
    ordering = ("-created_at",)
    fields = ("kid", "alg", "active", "public_jwk_display", "created_at")
    readonly_fields = ("kid", "alg", "active", "public_jwk_display", "created_at")
    actions = ("activate", "deactivate", "generate_rsa", "generate_ec")
    global_actions = ("generate_rsa", "generate_ec")

    @admin.display(description="public JWK")
    def public_jwk_display(self, obj: EncryptionKey) -> str:
        return _pretty_jwk(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        permissions=["change"], description="Publish selected keys (activate: offered and used)"
    )
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(active=True)
        self.message_user(request, f"Activated {count} key(s).")

    @admin.action(
        permissions=["change"], description="Deactivate selected keys (no longer offered or used)"
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(active=False)
        self.message_user(request, f"Deactivated {count} key(s).")

    @admin.action(permissions=["change"], description="Generate a new RSA-OAEP-256 key")
    def generate_rsa(self, request: HttpRequest, queryset: QuerySet) -> None:
        row = keystore.generate_encryption_key("RSA-OAEP-256")
        self.message_user(request, f"Generated encryption key {row.kid}.")

    @admin.action(permissions=["change"], description="Generate a new ECDH-ES+A256KW key")
    def generate_ec(self, request: HttpRequest, queryset: QuerySet) -> None:
        row = keystore.generate_encryption_key("ECDH-ES+A256KW")
        self.message_user(request, f"Generated encryption key {row.kid}.")


@admin.register(ClientKey)
class ClientKeyAdmin(GlobalActionsMixin, admin.ModelAdmin):
    """The receiver's private_key_jwt client keys: rotate (overlap) and retire."""

    list_display = ("kid", "alg", "state", "created_at", "retired_at")
    list_filter = ("state",)
    search_fields = ("kid",)
    ordering = ("-created_at",)
    fields = ("kid", "alg", "state", "public_jwk_display", "created_at", "retired_at")
    readonly_fields = fields
    actions = ("rotate_client_key", "retire_client_keys")
    global_actions = ("rotate_client_key",)

    @admin.display(description="public JWK")
    def public_jwk_display(self, obj: ClientKey) -> str:
        return _pretty_jwk(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ClientKey | None = None) -> bool:
        return False

    @admin.action(
        permissions=["change"],
        description="Rotate the client key (the old key stays published until retired)",
    )
    def rotate_client_key(self, request: HttpRequest, queryset: QuerySet) -> None:
        row = client_keys.rotate_client_key()
        self.message_user(request, f"Active client key is now {row.kid} ({row.alg}).")

    @admin.action(permissions=["change"], description="Retire selected retiring client keys")
    def retire_client_keys(self, request: HttpRequest, queryset: QuerySet) -> None:
        for row in queryset:
            try:
                client_keys.retire_client_key(row.kid)
            except SSFKeyError as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
            else:
                self.message_user(request, f"Retired client key {row.kid}.")
