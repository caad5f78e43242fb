"""Admin for the transmitter's outbox: outbound SETs, their attempts, delivery health.

The outbound-SET pages are read-only; *Redeliver* and *Drop* need the
``change_outboundset`` permission (a staff user who may only view SETs is not offered
them).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Count, Max, Min, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .. import delivery
from ..models import DeliveryAttempt, OutboundSET, StreamHealth, SubjectOptState


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("at", "outcome", "http_status", "latency_ms", "error")
    readonly_fields = fields
    ordering = ("-at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Path segments that say nothing about the event ("…/event-type/session-revoked").
_GENERIC_SEGMENTS = frozenset({"event-type", "event-types", "secevent", "events", "event"})


def short_event_label(event_type: str) -> str:
    """A short label for an event-type URI or URN, e.g. ``caep/session-revoked``.

    Works for any string a host may register (``https://…``, ``urn:…``, a bare name):
    a display helper must never break the changelist.
    """
    parts = [p for p in re.split(r"[/:#]+", event_type) if p]
    if not parts:
        return event_type or "-"
    last = parts[-1]
    family = next((p for p in reversed(parts[:-1]) if p.lower() not in _GENERIC_SEGMENTS), "")
    if not family or family.lower() in ("https", "http", "urn") or "." in family:
        return last
    return f"{family}/{last}"


class EventTypeFilter(admin.SimpleListFilter):
    """Filter by event type, labelled with the short part of the URI."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        types = (
            OutboundSET.objects.order_by("event_type")
            .values_list("event_type", flat=True)
            .distinct()
        )
        return [(t, short_event_label(t)) for t in types]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(event_type=self.value())
        return queryset


@admin.register(OutboundSET)
class OutboundSETAdmin(admin.ModelAdmin):
    list_display = (
        "jti",
        "stream_link",
        "short_event_type",
        "status",
        "attempts",
        "created_at",
        "delivered_at",
        "last_error_code",
    )
    list_filter = ("status", EventTypeFilter, "stream", "bypass_pause")
    search_fields = ("jti", "txn", "stream__stream_id", "event_type")
    date_hierarchy = "created_at"
    list_select_related = ("stream",)
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver_sets", "drop_sets"]
    readonly_fields = [f.name for f in OutboundSET._meta.fields] + ["claims_preview"]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Read-only detail page; state changes go through the actions.
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    @admin.display(description="stream", ordering="stream__stream_id")
    def stream_link(self, obj: OutboundSET) -> str:
        return obj.stream.stream_id

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Redeliver / drop: the model's change permission, on any HTTP method.

        (``has_change_permission`` is GET-only here to keep the detail page read-only,
        so it cannot guard actions, which are POSTs.)
        """
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    @admin.display(description="event type", ordering="event_type")
    def short_event_type(self, obj: OutboundSET) -> str:
        return short_event_label(obj.event_type)

    @admin.display(description="claims (unverified view of our own SET)")
    def claims_preview(self, obj: OutboundSET) -> str:
        from ...core.jose import is_jwe, peek_claims

        if is_jwe(obj.token):
            return "encrypted for the receiver (JWE)"
        try:
            import json

            return format_html("<pre>{}</pre>", json.dumps(peek_claims(obj.token), indent=2))
        except Exception as exc:  # a display helper must not break the page
            return f"cannot decode: {exc}"

    @admin.action(permissions=["operate"], description="Redeliver selected SETs")
    def redeliver_sets(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = delivery.redeliver(queryset)
        skipped = queryset.count() - n
        msg = f"{n} SET(s) queued for redelivery."
        if skipped:
            msg += f" {skipped} skipped (their stream is disabled)."
        self.message_user(request, msg, messages.SUCCESS)

    @admin.action(permissions=["operate"], description="Drop selected undelivered SETs")
    def drop_sets(self, request: HttpRequest, queryset: QuerySet) -> None:
        n = delivery.drop(queryset)
        self.message_user(request, f"{n} SET(s) dropped.", messages.SUCCESS)


@admin.register(StreamHealth)
class StreamHealthAdmin(admin.ModelAdmin):
    """Per-stream delivery health: counts, oldest pending age, last error (one query)."""

    list_display = (
        "stream_id",
        "delivery_method",
        "status",
        "pending",
        "held",
        "delivered",
        "failed",
        "oldest_pending_age",
        "last_delivered",
    )
    list_filter = ("status", "delivery_method")
    search_fields = ("stream_id", "description")
    readonly_fields = ("stream_id", "delivery_method", "status", "health_detail")
    fields = readonly_fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        s = OutboundSET
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_pending=Count("outbound_sets", filter=Q(outbound_sets__status=s.STATUS_PENDING)),
                n_held=Count("outbound_sets", filter=Q(outbound_sets__status=s.STATUS_HELD)),
                n_delivered=Count(
                    "outbound_sets", filter=Q(outbound_sets__status=s.STATUS_DELIVERED)
                ),
                n_failed=Count(
                    "outbound_sets",
                    filter=Q(outbound_sets__status__in=(s.STATUS_FAILED, s.STATUS_DEAD)),
                ),
                oldest_pending_at=Min(
                    "outbound_sets__created_at",
                    filter=Q(outbound_sets__status=s.STATUS_PENDING),
                ),
                last_delivered_at=Max("outbound_sets__delivered_at"),
            )
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.method in ("GET", "HEAD") and super().has_change_permission(request, obj)

    @admin.display(ordering="n_pending")
    def pending(self, obj: Any) -> int:
        return obj.n_pending

    @admin.display(ordering="n_held")
    def held(self, obj: Any) -> int:
        return obj.n_held

    @admin.display(ordering="n_delivered")
    def delivered(self, obj: Any) -> int:
        return obj.n_delivered

    @admin.display(description="failed / dead", ordering="n_failed")
    def failed(self, obj: Any) -> int:
        return obj.n_failed

    @admin.display(description="oldest pending", ordering="oldest_pending_at")
    def oldest_pending_age(self, obj: Any) -> str:
        if not obj.oldest_pending_at:
            return "-"
        return f"{(timezone.now() - obj.oldest_pending_at).total_seconds():.0f} s"

    @admin.display(description="last delivered", ordering="last_delivered_at")
    def last_delivered(self, obj: Any) -> Any:
        return obj.last_delivered_at or "-"

    @admin.display(description="delivery health")
    def health_detail(self, obj: Any) -> str:
        health = delivery.stream_health(obj)
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, v) for k, v in health.items())
        )
        return format_html("<table>{}</table>", rows)


@admin.register(SubjectOptState)
class SubjectOptStateAdmin(admin.ModelAdmin):
    list_display = ("subject", "state", "updated_at")
    list_filter = ("state",)
    search_fields = ("subject_key",)
    readonly_fields = ("subject_key", "updated_at")
