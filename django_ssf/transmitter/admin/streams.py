"""Admin for the transmitter control plane: streams, their subjects, receiver clients.

Status actions are transmitter-initiated changes: they go through
:func:`django_ssf.transmitter.status.set_status`, so the receiver gets a stream-updated
event (SSF §8.1.2). Every state-changing action needs the model's *change* permission: a
staff user who may only view streams is not offered them. Secrets (a push stream's
``authorization_header``) are never shown in full.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from ...core import constants as c
from ...core.masking import mask_secret
from ..errors import StreamError
from ..models import ReceiverClient, Stream, StreamSubject
from ..status import set_status
from ..verification import request_verification


class StreamSubjectInline(admin.TabularInline):
    model = StreamSubject
    extra = 0
    fields = ("subject", "verified", "included", "created_at", "updated_at")
    readonly_fields = ("subject", "verified", "included", "created_at", "updated_at")
    can_delete = True
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # receivers add subjects through the API, canonicalised there


class StreamAdminForm(forms.ModelForm):
    """Edits the stream without ever rendering the stored ``authorization_header``."""

    new_authorization_header = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Replace the push Authorization header (leave empty to keep it).",
    )
    clear_authorization_header = forms.BooleanField(required=False)

    class Meta:
        model = Stream
        fields = ("description",)

    #: The only columns this form writes: a full save would also write back the status
    #: read when the page was loaded, undoing a pause or disable committed meanwhile.
    SAVED_FIELDS = ("description", "authorization_header", "updated_at")

    def save(self, commit: bool = True) -> Stream:
        stream = super().save(commit=False)
        if self.cleaned_data.get("clear_authorization_header"):
            stream.authorization_header = ""
        elif self.cleaned_data.get("new_authorization_header"):
            stream.authorization_header = self.cleaned_data["new_authorization_header"]
        if commit:
            stream.save(update_fields=self.SAVED_FIELDS)
        return stream


def status_action(status: str, label: str, permission: str = "change") -> Any:
    """An admin action setting the status of the selected streams (notifies the receiver)."""

    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        changed = 0
        for stream in queryset:
            if stream.status != status:
                set_status(
                    stream, status, f"Set to {status} by an administrator.", initiator="transmitter"
                )
                changed += 1
        modeladmin.message_user(request, f"{changed} stream(s) {label}.", messages.SUCCESS)

    action.__name__ = f"make_{status}"
    return admin.action(
        permissions=[permission],
        description=f"{label.capitalize()} selected streams (notifies the receiver)",
    )(action)


def send_verification(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
) -> None:
    """Send a verification event (no state) on each selected stream."""
    sent = 0
    for stream in queryset:
        try:
            request_verification(stream, None, enforce_interval=False)
        except StreamError as exc:
            modeladmin.message_user(request, f"{stream.stream_id}: {exc.description}",
                                    messages.ERROR)
        else:
            sent += 1
    if sent:
        modeladmin.message_user(request, f"Verification queued for {sent} stream(s).")


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    form = StreamAdminForm
    list_display = ("stream_id", "client", "delivery", "status", "health_link", "created_at")
    list_filter = ("status", "delivery_method", "default_subjects")
    search_fields = ("stream_id", "description", "client__name", "client__client_id")
    readonly_fields = (
        "stream_id",
        "client",
        "aud",
        "delivery_method",
        "endpoint_url",
        "authorization_header_masked",
        "events_requested",
        "events_delivered",
        "status",
        "reason",
        "default_subjects",
        "encryption_summary",
        "last_verification_requested_at",
        "last_activity_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("stream_id", "client", "aud", "description", "status", "reason")}),
        (
            "Delivery",
            {
                "fields": (
                    "delivery_method",
                    "endpoint_url",
                    "authorization_header_masked",
                    "new_authorization_header",
                    "clear_authorization_header",
                    "encryption_summary",
                )
            },
        ),
        ("Events", {"fields": ("events_requested", "events_delivered", "default_subjects")}),
        (
            "Activity",
            {
                "fields": (
                    "last_activity_at",
                    "last_verification_requested_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    inlines = [StreamSubjectInline]
    actions = [
        status_action(c.STATUS_ENABLED, "enabled"),
        status_action(c.STATUS_PAUSED, "paused"),
        status_action(c.STATUS_DISABLED, "disabled"),
        "send_verification",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # streams are created by receivers through the control plane

    def save_model(self, request: HttpRequest, obj: Stream, form: Any, change: bool) -> None:
        # Only the columns the form edits (see StreamAdminForm.SAVED_FIELDS).
        if change:
            obj.save(update_fields=StreamAdminForm.SAVED_FIELDS)
        else:  # pragma: no cover - adding is not allowed
            obj.save()

    @admin.display(description="delivery", ordering="delivery_method")
    def delivery(self, obj: Stream) -> str:
        return "push" if obj.delivery_method == c.DELIVERY_PUSH else "poll"

    @admin.display(description="health")
    def health_link(self, obj: Stream) -> str:
        url = reverse("admin:ssf_transmitter_streamhealth_change", args=[obj.pk])
        return format_html('<a href="{}">health</a>', url)

    @admin.display(description="Authorization header")
    def authorization_header_masked(self, obj: Stream) -> str:
        return mask_secret(obj.authorization_header)

    @admin.display(description="Encryption")
    def encryption_summary(self, obj: Stream) -> str:
        if not obj.is_encrypted:
            return "—"
        source = f"kid {obj.encryption_jwk.get('kid', '?')}" if obj.encryption_jwk else "JWKS URL"
        return f"{obj.encryption_alg or '-'} / {obj.encryption_enc or '-'} ({source})"

    @admin.action(
        permissions=["change"], description="Send verification (no state) to selected streams"
    )
    def send_verification(self, request: HttpRequest, queryset: QuerySet) -> None:
        send_verification(self, request, queryset)


@admin.register(ReceiverClient)
class ReceiverClientAdmin(admin.ModelAdmin):
    list_display = ("application", "client_id", "allowed_scopes", "stream_count", "created_at")
    search_fields = ("application__name", "application__client_id")
    readonly_fields = ("client_id", "created_at")
    fields = ("application", "client_id", "allowed_scopes", "created_at")
    raw_id_fields = ("application",)

    @admin.display(description="client_id")
    def client_id(self, obj: ReceiverClient) -> str:
        return obj.application.client_id

    @admin.display(description="Streams")
    def stream_count(self, obj: ReceiverClient) -> int:
        return Stream.objects.for_client(obj.application).count()
