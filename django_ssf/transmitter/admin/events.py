"""Admin for emitted events: one row per ``emit()``, and how far its fan-out got.

A read-only log, like the outbound SETs. An event whose fan-out has not finished shows
the primary key of the last stream done (``cursor``); *Fan out now* runs what is left in
the web process (the same work as the ``fanout_event`` task, safe next to it) and needs
the ``change_outboundevent`` permission. The sweeper does the same on its own for events
older than ``TRANSMITTER_SWEEPER_GRACE_SECONDS``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest

from ...core.display import short_event_label
from .. import emission
from ..models import OutboundEvent

__all__ = ["OutboundEventAdmin"]


class FannedOutFilter(admin.SimpleListFilter):
    title = "fan-out"
    parameter_name = "fanned_out"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "not finished"), ("yes", "finished")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "no":
            return queryset.filter(fanned_out_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(fanned_out_at__isnull=False)
        return queryset


@admin.register(OutboundEvent)
class OutboundEventAdmin(admin.ModelAdmin):
    list_display = (
        "emitted_at",
        "short_event_type",
        "txn",
        "set_count",
        "fan_out_state",
    )
    list_filter = (FannedOutFilter,)
    search_fields = ("event_id", "txn", "event_type")
    date_hierarchy = "emitted_at"
    actions = ["fan_out_now"]
    readonly_fields = [f.name for f in OutboundEvent._meta.fields]
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a log: the detail page is a "view" page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # retention removes them once their SETs are gone

    def has_operate_permission(self, request: HttpRequest) -> bool:
        opts = OutboundEvent._meta
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")

    @admin.display(description="event type", ordering="event_type")
    def short_event_type(self, obj: OutboundEvent) -> str:
        return short_event_label(obj.event_type)

    @admin.display(description="fan-out")
    def fan_out_state(self, obj: OutboundEvent) -> str:
        if obj.fanned_out_at is not None:
            return f"done {obj.fanned_out_at:%Y-%m-%d %H:%M:%S}"
        return f"in progress (after stream pk {obj.cursor})" if obj.cursor else "not started"

    @admin.action(description="Fan out now (what is left)", permissions=["operate"])
    def fan_out_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        pks = list(
            queryset.filter(fanned_out_at__isnull=True).order_by("pk").values_list("pk", flat=True)
        )
        done = sum(1 for pk in pks if emission.fan_out(pk))
        self.message_user(request, f"{done} of {len(pks)} event(s) fanned out.", messages.SUCCESS)
