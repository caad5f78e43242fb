"""Admin for the receiver: transmitters, our streams at them, received SETs.

Secrets (bearer token, client secret, cached access token, push ``authorization_header``)
are never shown in full. Actions call the same service functions as the management
commands (:mod:`django_ssf.receiver.client`, :mod:`django_ssf.receiver.ingest`). Receiver
encryption keys themselves are managed on the "Encryption keys" page; the transmitter page
offers "generate a receiver encryption key" and shows the JWKS URL to give a transmitter.

Each stream page is that stream's console: status, counts, success rate and latency over
the last hour and day, last error, last verification (:mod:`django_ssf.receiver.health`),
and the actions verify, pause, enable, disable, re-sync and reprocess failed SETs. Received
SETs are a read-only log (Django's "view" page) with the actions taken in the list.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ..conf import ssf_settings
from ..core import constants as c
from ..core.display import format_rate, format_seconds, format_when, html_table, short_event_label
from ..core.masking import mask_secret
from .health import stream_console, window_stats
from .models import (
    ActionRecord,
    ClientRegistration,
    InboundSET,
    PendingVerification,
    ReceiverStream,
    Transmitter,
)

if TYPE_CHECKING:
    pass

def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (list columns stay narrow)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


def _client(transmitter: Transmitter) -> Any:
    from .client import TransmitterClient

    return TransmitterClient(transmitter)


class TransmitterForm(forms.ModelForm):
    class Meta:
        model = Transmitter
        fields = (
            "issuer", "description", "legacy", "legacy_subject_in_event",
            "legacy_subject_type", "legacy_sse_namespace", "legacy_delivery_uris",
            "legacy_numeric_txn",
        )


class ReceiverStreamForm(forms.ModelForm):
    """The stream's control-plane credentials; secrets are write-only (blank keeps them)."""

    bearer_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="Static bearer token. Leave blank to keep the current one.",
    )
    client_secret = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False),
        help_text="OAuth client secret. Leave blank to keep the current one.",
    )
    token_endpoint = forms.URLField(
        required=False, assume_scheme="https", max_length=2048,
        help_text="OAuth token endpoint; empty: found through RFC 9728 / RFC 8414 metadata.",
    )
    poll_url = forms.URLField(
        required=False, assume_scheme="https", max_length=2048,
        help_text="Legacy transmitters only: the poll URL to use when the transmitter's "
                  "stream configuration carries none.",
    )

    class Meta:
        model = ReceiverStream
        fields = ("description", "auth_method", "bearer_token", "client_id", "client_secret",
                  "token_endpoint", "scope", "poll_url")

    def clean_bearer_token(self) -> str:
        return self.cleaned_data.get("bearer_token") or (
            self.instance.bearer_token if self.instance.pk else "")

    def clean_client_secret(self) -> str:
        return self.cleaned_data.get("client_secret") or (
            self.instance.client_secret if self.instance.pk else "")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # New credentials invalidate the cached access token of the old ones.
        # (Runs before the form's values are copied onto the instance.)
        if self.instance.pk and any(
                name in data and data[name] != getattr(self.instance, name)
                for name in ("auth_method", "bearer_token", "client_id", "client_secret",
                             "token_endpoint", "scope")):
            self.instance.access_token = ""
            self.instance.access_token_expires_at = None
        return data


class ReceiverStreamInline(admin.TabularInline):
    model = ReceiverStream
    fields = ("stream_id", "delivery_method", "status", "active", "last_verified_at",
              "last_event_at")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Transmitter)
class TransmitterAdmin(admin.ModelAdmin):
    form = TransmitterForm
    list_display = ("issuer", "spec_version", "legacy", "stream_count", "jwks_fetched_at")
    list_filter = ("legacy",)
    search_fields = ("issuer", "description")
    readonly_fields = ("configuration_url", "spec_version", "metadata_display",
                       "jwks_display", "jwks_fetched_at", "receiver_jwks_url", "created_at",
                       "updated_at")
    fieldsets = (
        (None, {"fields": ("issuer", "description", "configuration_url", "spec_version",
                           "metadata_display")}),
        ("Subjects this transmitter may name", {"fields": (
            "subject_issuers", "trust_own_issuer_subjects")}),
        ("Keys", {"fields": ("jwks_display", "jwks_fetched_at", "receiver_jwks_url")}),
        ("Legacy compatibility", {"fields": (
            "legacy", "legacy_subject_in_event", "legacy_subject_type", "legacy_sse_namespace",
            "legacy_delivery_uris", "legacy_numeric_txn")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )
    inlines = (ReceiverStreamInline,)
    actions = ("refresh_metadata", "refresh_jwks", "generate_encryption_key")

    @admin.display(description="streams")
    def stream_count(self, obj: Transmitter) -> int:
        return obj.streams.count()

    @admin.display(description="metadata")
    def metadata_display(self, obj: Transmitter) -> str:
        return _pretty(obj.metadata)

    @admin.display(description="cached JWKS")
    def jwks_display(self, obj: Transmitter) -> str:
        return _pretty(obj.jwks) if obj.jwks else "-"

    @admin.display(description="our encryption JWKS (give it to the transmitter)")
    def receiver_jwks_url(self, obj: Transmitter) -> str:
        url = ssf_settings.absolute_url(reverse("ssf-receiver-jwks"))
        return format_html('<a href="{}">{}</a>', url, url)

    @admin.action(permissions=["change"], description="Refresh discovery metadata")
    def refresh_metadata(self, request: HttpRequest, queryset: QuerySet) -> None:
        from .discovery import DiscoveryError, discover

        for transmitter in queryset:
            try:
                found = discover(transmitter.issuer, legacy=transmitter.legacy)
            except DiscoveryError as exc:
                self.message_user(request, f"{transmitter}: {exc}", messages.ERROR)
                continue
            transmitter.metadata = found.metadata
            transmitter.configuration_url = found.configuration_url
            transmitter.save(update_fields=["metadata", "configuration_url", "updated_at"])
            self.message_user(request, f"{transmitter}: metadata refreshed")

    @admin.action(permissions=["change"], description="Refetch signing keys (JWKS)")
    def refresh_jwks(self, request: HttpRequest, queryset: QuerySet) -> None:
        from .jwks import JWKSFetchError, refresh_jwks

        for transmitter in queryset:
            try:
                refresh_jwks(transmitter)
            except JWKSFetchError as exc:
                self.message_user(request, f"{transmitter}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{transmitter}: JWKS refreshed")

    @admin.action(permissions=["change"], description="Generate a receiver encryption key (JWE)")
    def generate_encryption_key(self, request: HttpRequest, queryset: QuerySet) -> None:
        from ..keys import keystore

        row = keystore.generate_encryption_key(ssf_settings.TRANSMITTER_JWE_ALGORITHM)
        url = ssf_settings.absolute_url(reverse("ssf-receiver-jwks"))
        self.message_user(
            request, f"encryption key {row.kid} created; transmitters find it at {url}"
        )


class PendingVerificationInline(admin.TabularInline):
    model = PendingVerification
    fields = ("state", "requested_at", "completed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(ReceiverStream)
class ReceiverStreamAdmin(admin.ModelAdmin):
    form = ReceiverStreamForm
    list_display = ("id", "stream_id", "transmitter", "delivery", "auth_method", "status",
                    "active",
                    "success_last_hour", "last_verified_at", "last_event_at")
    list_filter = ("delivery_method", "status", "active", "transmitter")
    search_fields = ("stream_id", "description", "transmitter__issuer")
    list_select_related = ("transmitter",)
    readonly_fields = ("health_display", "transmitter", "stream_id", "delivery_method",
                       "push_url_display",
                       "authorization_header_display", "iss", "aud",
                       "events_supported", "events_requested", "events_delivered", "status",
                       "reason", "config_display", "active", "last_verified_at",
                       "last_event_at", "last_polled_at", "last_management_at", "created_at",
                       "updated_at", "access_token_display")
    fieldsets = (
        (None, {"fields": ("description", *readonly_fields[:-1], "poll_url")}),
        ("Control-plane credentials (this stream's own)", {"fields": (
            "auth_method", "bearer_token", "client_id", "client_secret", "token_endpoint",
            "scope", "access_token_display")}),
    )
    inlines = (PendingVerificationInline,)
    actions = ("verify", "pause", "resume", "disable", "resync", "reprocess_failed")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # streams are created at the transmitter (ssf_connect)

    @admin.display(description="delivery", ordering="delivery_method")
    def delivery(self, obj: ReceiverStream) -> str:
        return "push" if obj.is_push else "poll"

    @admin.display(description="success (1 h)")
    def success_last_hour(self, obj: ReceiverStream) -> str:
        from .health import WINDOWS

        _label, length = WINDOWS[0]
        return format_rate(window_stats(obj, timezone.now() - length)["success_rate"])

    @admin.display(description="health")
    def health_display(self, obj: ReceiverStream) -> str:
        if obj.pk is None:
            return "-"
        health = stream_console(obj)
        counts = health["counts"]
        error = health["last_error"]
        summary = html_table(list(counts), [list(counts.values())])
        windows = html_table(
            ("window", "SETs", "processed", "success rate", "received → processed"),
            [
                (label, w["received"], w["processed"], format_rate(w["success_rate"]),
                 format_seconds(w["mean_latency_seconds"]))
                for label, w in health["windows"].items()
            ],
        )
        facts = html_table(
            ("", ""),
            [
                ("status", f"{health['status']} ({'active' if health['active'] else 'inactive'})"),
                ("last error", "-" if not error else (
                    f"{error['status']} {error['error_code'] or ''}: "
                    f"{error['error_description']} (jti {error['jti'] or '-'})")),
                ("last verified", format_when(health["last_verified_at"])),
                ("last event", format_when(health["last_event_at"])),
            ],
        )
        return format_html("{}<br>{}<br>{}", summary, windows, facts)

    @admin.display(description="cached access token")
    def access_token_display(self, obj: ReceiverStream) -> str:
        if not obj.access_token:
            return "-"
        return f"{mask_secret(obj.access_token)} (expires {obj.access_token_expires_at})"

    @admin.display(description="push endpoint")
    def push_url_display(self, obj: ReceiverStream) -> str:
        return obj.push_url() if obj.is_push else "-"

    @admin.display(description="authorization header")
    def authorization_header_display(self, obj: ReceiverStream) -> str:
        # Only a digest is stored: there is nothing to show but whether one is set.
        return "set" if obj.has_authorization_header else "not set"

    @admin.display(description="configuration at the transmitter")
    def config_display(self, obj: ReceiverStream) -> str:
        safe = json.loads(json.dumps(obj.config or {}))
        delivery = safe.get("delivery")
        if isinstance(delivery, dict) and delivery.get("authorization_header"):
            delivery["authorization_header"] = mask_secret(delivery["authorization_header"],
                                                           keep=10)
        return _pretty(safe)

    def _each(self, request: HttpRequest, queryset: QuerySet, label: str, func: Any) -> None:
        from .client import ControlPlaneError

        for stream in queryset.select_related("transmitter"):
            try:
                func(_client(stream.transmitter), stream)
            except ControlPlaneError as exc:
                self.message_user(request, f"{label} {stream}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{label} {stream}: done")

    @admin.action(permissions=["change"], description="Request verification")
    def verify(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "verification requested for",
                   lambda client, s: client.request_verification(s))

    @admin.action(permissions=["change"], description="Pause at the transmitter")
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "pause",
                   lambda client, s: client.set_status(s, c.STATUS_PAUSED))

    @admin.action(permissions=["change"], description="Resume (enable) at the transmitter")
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "resume",
                   lambda client, s: client.set_status(s, c.STATUS_ENABLED))

    @admin.action(permissions=["change"], description="Disable at the transmitter")
    def disable(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "disable",
                   lambda client, s: client.set_status(s, c.STATUS_DISABLED))

    @admin.action(
        permissions=["change"], description="Reprocess the failed SETs of selected streams"
    )
    def reprocess_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        from .ingest import reprocess

        failed = InboundSET.objects.filter(
            stream__in=queryset, status=InboundSET.STATUS_FAILED
        ).select_related("stream__transmitter", "transmitter")
        results = [reprocess(inbound) for inbound in failed]
        done = sum(1 for result in results if result.ok)
        self.message_user(
            request, f"{len(results)} failed SET(s) reprocessed, {done} now processed."
        )

    @admin.action(
        permissions=["change"], description="Re-sync configuration and status from the transmitter"
    )
    def resync(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "re-sync", lambda client, s: client.sync(s))


class ActionRecordInline(admin.TabularInline):
    model = ActionRecord
    fields = ("action", "outcome", "detail", "at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(InboundSET)
class InboundSETAdmin(admin.ModelAdmin):
    # Fits a 1400 px screen next to the admin's navigation and filters; via and
    # transmitter are filters, the full texts are on the view page.
    list_display = ("received_at", "short_event_type", "subject_short", "status", "outcome")
    list_filter = ("status", "via", "error_code", "transmitter")
    search_fields = ("jti", "event_type", "txn", "iss")
    list_select_related = ("transmitter",)
    date_hierarchy = "received_at"
    readonly_fields = ("transmitter", "stream", "jti", "via", "iss", "event_type",
                       "subject_display", "txn", "status", "error_code", "error_description",
                       "flags_display", "duplicate_of", "received_at", "processed_at",
                       "header_display", "claims_display", "token")
    fields = readonly_fields
    inlines = (ActionRecordInline,)
    actions = ("reprocess",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a log: read-only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a log: every SET received stays on record (retention purges it)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("actions")

    @admin.display(description="event", ordering="event_type")
    def short_event_type(self, obj: InboundSET) -> str:
        return short_event_label(obj.event_type)

    @admin.display(description="subject")
    def subject_short(self, obj: InboundSET) -> str:
        subject = obj.subject if isinstance(obj.subject, dict) else {}
        for key in ("email", "phone_number", "sub", "id", "uri", "url"):
            if isinstance(subject.get(key), str):
                return _clip(subject[key], 20)
        return subject.get("format", "-") if subject else "-"

    @admin.display(description="outcome")  # the validation error or the actions taken
    def outcome(self, obj: InboundSET) -> str:
        if obj.status in (InboundSET.STATUS_REJECTED, InboundSET.STATUS_FAILED):
            text = f"{obj.error_code or obj.status}: {obj.error_description}"
        else:
            records = list(obj.actions.all())  # prefetched
            if not records:
                return "-"
            text = "; ".join(f"{r.detail or r.action} ({r.outcome})" for r in records)
        return format_html('<span title="{}">{}</span>', text, _clip(text, 50))

    @admin.display(description="flags")  # accepted, but unexpected (docs/conformance.md)
    def flags_display(self, obj: InboundSET) -> str:
        flags = [f for f in (obj.flags or []) if isinstance(f, str)]
        if not flags:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}", ((f,) for f in flags))

    @admin.display(description="header")
    def header_display(self, obj: InboundSET) -> str:
        from ..core.jose import peek_header

        try:
            return _pretty(peek_header(obj.token))
        except Exception as exc:  # a display helper must not break the page
            return f"cannot decode: {exc}"

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        # The log itself is never editable, so the action is guarded by the model's
        # change permission directly: view-only staff are not offered it.
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.display(description="subject")
    def subject_display(self, obj: InboundSET) -> str:
        return _pretty(obj.subject) if obj.subject is not None else "-"

    @admin.display(description="claims")
    def claims_display(self, obj: InboundSET) -> str:
        return _pretty(obj.claims) if obj.claims is not None else "-"

    @admin.action(
        permissions=["reprocess"],
        description="Reprocess (validate again if rejected, then process)",
    )
    def reprocess(self, request: HttpRequest, queryset: QuerySet) -> None:
        from .ingest import reprocess

        for inbound in queryset.select_related("stream__transmitter", "transmitter"):
            result = reprocess(inbound)
            level = messages.INFO if result.ok else messages.WARNING
            detail = f" ({result.error.code})" if result.error else ""
            self.message_user(request, f"{inbound.jti or inbound.pk}: {result.status}{detail}",
                              level)


@admin.register(ClientRegistration)
class ClientRegistrationAdmin(admin.ModelAdmin):
    """Our dynamically registered OAuth clients (``ssf_connect --register``), read-only.

    The RFC 7592 registration access token is never shown.
    """

    list_display = ("client_id", "transmitter", "created_at")
    search_fields = ("client_id", "transmitter__issuer")
    fields = ("transmitter", "client_id", "registration_client_uri", "metadata_display",
              "created_at")
    readonly_fields = fields

    @admin.display(description="registered metadata")
    def metadata_display(self, obj: ClientRegistration) -> str:
        return _pretty(obj.metadata)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
