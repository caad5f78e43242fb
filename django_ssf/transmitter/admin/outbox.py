"""Admin for the transmitter's outbox: outbound SETs, their attempts, delivery health.

The outbound-SET pages are a read-only log (Django's "view" page: no Save, no Delete);
*Redeliver* and *Drop* need the ``change_outboundset`` permission (a staff user who may
only view SETs is not offered them). The stream health page is the console of one
stream: counts, success rate and latency over the last hour and day, last error, last
verification, and the actions (send verification, enable, pause, disable, redeliver failed
or dead-lettered SETs), which need the ``change_stream`` permission.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Count, Max, Min, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from ...core import constants as c
from ...core.display import format_rate, format_seconds, format_when, html_table, short_event_label
from .. import delivery
from ..health import stream_console
from ..models import DeliveryAttempt, OutboundSET, Stream, StreamHealth, SubjectOptState
from .streams import send_verification, status_action

__all__ = ["OutboundSETAdmin", "StreamHealthAdmin", "short_event_label"]


def _has_perm(request: HttpRequest, model: Any, action: str) -> bool:
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("at", "outcome", "http_status", "latency_ms", "error")
    readonly_fields = fields
    ordering = ("-at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
        "created_at",
        "short_event_type",
        "stream_link",
        "status",
        "attempts_summary",
        "delivered_at",
    )
    list_filter = ("status", EventTypeFilter, "stream", "bypass_pause")
    search_fields = ("jti", "txn", "stream__stream_id", "event_type")
    date_hierarchy = "created_at"
    list_select_related = ("stream",)
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver_sets", "drop_sets"]
    readonly_fields = [
        "header_preview", "claims_preview", *(f.name for f in OutboundSET._meta.fields)
    ]
    list_per_page = 100

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("attempts_log")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a log: the detail page is a "view" page; changes go through actions

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # "drop" is the operator's way to give up on a SET; rows stay as a record

    @admin.display(description="attempts")
    def attempts_summary(self, obj: OutboundSET) -> str:
        attempts = list(obj.attempts_log.all())  # prefetched, newest first
        if not attempts:
            return "-"
        last = attempts[0]
        parts = [last.get_outcome_display()]
        if last.http_status:
            parts.append(str(last.http_status))
        if last.latency_ms is not None:
            parts.append(format_seconds(last.latency_ms / 1000))
        return f"{len(attempts)} · last: {' '.join(parts)}"

    @admin.display(description="header")
    def header_preview(self, obj: OutboundSET) -> str:
        from ...core.jose import peek_header

        try:
            return format_html("<pre>{}</pre>", json.dumps(peek_header(obj.token), indent=2))
        except Exception as exc:  # a display helper must not break the page
            return f"cannot decode: {exc}"

    @admin.display(description="stream", ordering="stream__stream_id")
    def stream_link(self, obj: OutboundSET) -> str:
        return obj.stream.stream_id

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Redeliver / drop: the model's change permission (the page itself is view-only)."""
        return _has_perm(request, OutboundSET, "change")

    @admin.display(description="event type", ordering="event_type")
    def short_event_type(self, obj: OutboundSET) -> str:
        return short_event_label(obj.event_type)

    @admin.display(description="claims (unverified view of our own SET)")
    def claims_preview(self, obj: OutboundSET) -> str:
        from ...core.jose import is_jwe, peek_claims

        if is_jwe(obj.token):
            return "encrypted for the receiver (JWE)"
        try:
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


def _operate(modeladmin: admin.ModelAdmin, request: HttpRequest) -> bool:
    """The stream console's actions change streams: they need ``change_stream``."""
    return _has_perm(request, Stream, "change")


@admin.register(StreamHealth)
class StreamHealthAdmin(admin.ModelAdmin):
    """The console of each outbound stream: health at a glance, actions from there."""

    list_display = (
        "stream_id",
        "delivery",
        "status",
        "delivered",
        "pending",
        "failed",
        "dead",
        "success_last_hour",
        "oldest_pending_age",
        "last_delivered",
    )
    list_filter = ("status", "delivery_method")
    search_fields = ("stream_id", "description")
    readonly_fields = ("stream_id", "delivery_method", "status", "reason", "health_detail")
    fields = readonly_fields
    actions = [
        "send_verification",
        status_action(c.STATUS_ENABLED, "enabled", "operate"),
        status_action(c.STATUS_PAUSED, "paused", "operate"),
        status_action(c.STATUS_DISABLED, "disabled", "operate"),
        "redeliver_failed",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        s = OutboundSET
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_pending=Count(
                    "outbound_sets",
                    filter=Q(outbound_sets__status__in=(s.STATUS_PENDING, s.STATUS_HELD)),
                ),
                n_delivered=Count(
                    "outbound_sets", filter=Q(outbound_sets__status=s.STATUS_DELIVERED)
                ),
                n_failed=Count("outbound_sets", filter=Q(outbound_sets__status=s.STATUS_FAILED)),
                n_dead=Count("outbound_sets", filter=Q(outbound_sets__status=s.STATUS_DEAD)),
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
        return False  # a "view" page; the actions below change the stream

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return _operate(self, request)

    @admin.display(description="delivery", ordering="delivery_method")
    def delivery(self, obj: Any) -> str:
        return "push" if obj.delivery_method == c.DELIVERY_PUSH else "poll"

    @admin.display(description="pending", ordering="n_pending")
    def pending(self, obj: Any) -> int:
        return obj.n_pending

    @admin.display(ordering="n_delivered")
    def delivered(self, obj: Any) -> int:
        return obj.n_delivered

    @admin.display(ordering="n_failed")
    def failed(self, obj: Any) -> int:
        return obj.n_failed

    @admin.display(description="dead-lettered", ordering="n_dead")
    def dead(self, obj: Any) -> int:
        return obj.n_dead

    @admin.display(description="success (1 h)")
    def success_last_hour(self, obj: Any) -> str:
        from ..health import WINDOWS, window_stats

        _label, length = WINDOWS[0]
        return format_rate(window_stats(obj, timezone.now() - length)["success_rate"])

    @admin.display(description="oldest pending", ordering="oldest_pending_at")
    def oldest_pending_age(self, obj: Any) -> str:
        if not obj.oldest_pending_at:
            return "-"
        return format_seconds((timezone.now() - obj.oldest_pending_at).total_seconds())

    @admin.display(description="last delivered", ordering="last_delivered_at")
    def last_delivered(self, obj: Any) -> Any:
        return obj.last_delivered_at or "-"

    @admin.display(description="health")
    def health_detail(self, obj: Any) -> str:
        health = stream_console(obj)
        counts = health["counts"]
        error = health["last_error"]
        summary = html_table(
            ("delivered", "pending", "failed", "dead-lettered", "dropped"),
            [(counts["delivered"], counts["pending"], counts["failed"], counts["dead"],
              counts["dropped"])],
        )
        windows = html_table(
            ("window", "SETs", "delivered", "success rate", "emit → delivered", "HTTP latency"),
            [
                (label, w["created"], w["delivered"], format_rate(w["success_rate"]),
                 format_seconds(w["mean_latency_seconds"]),
                 format_seconds(w["mean_http_latency_seconds"]))
                for label, w in health["windows"].items()
            ],
        )
        facts = html_table(
            ("", ""),
            [
                ("status", f"{health['status']}"
                 + (f" ({health['reason']})" if health["reason"] else "")),
                ("last error", "-" if not error else (
                    f"{error['last_error_code']}: {error['last_error_description']}"
                    f" (HTTP {error['last_http_status'] or '-'}, jti {error['jti']})")),
                ("last verification sent", format_when(health["last_verification_requested_at"])),
                ("last delivered", format_when(health["last_delivered_at"])),
                ("oldest pending", format_seconds(health["oldest_pending_age_seconds"])),
            ],
        )
        return format_html("{}<br>{}<br>{}", summary, windows, facts)

    @admin.action(permissions=["operate"], description="Send verification to selected streams")
    def send_verification(self, request: HttpRequest, queryset: QuerySet) -> None:
        send_verification(self, request, queryset)

    @admin.action(
        permissions=["operate"],
        description="Redeliver the failed and dead-lettered SETs of selected streams",
    )
    def redeliver_failed(self, request: HttpRequest, queryset: QuerySet) -> None:
        sets = OutboundSET.objects.filter(
            stream__in=queryset, status__in=(OutboundSET.STATUS_FAILED, OutboundSET.STATUS_DEAD)
        )
        n = delivery.redeliver(sets)
        self.message_user(request, f"{n} SET(s) queued for redelivery.", messages.SUCCESS)


@admin.register(SubjectOptState)
class SubjectOptStateAdmin(admin.ModelAdmin):
    list_display = ("subject", "state", "updated_at")
    list_filter = ("state",)
    search_fields = ("subject_key",)
    readonly_fields = ("subject_key", "updated_at")
