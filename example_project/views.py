"""Pages of the example project: home, who-am-I, and the live SSF dashboard.

The dashboard (staff only, it shows stream ids and subjects) lists what this site
transmits (our ``Stream`` rows and their outbound SETs) and what it receives (the
receiver's streams and inbound SETs); its page polls :func:`dashboard_json` every second.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from django_ssf.conf import ssf_settings
from django_ssf.core import constants as c

from . import dashboard as data

DASHBOARD_ROWS = 25
DASHBOARD_MAX_ROWS = 500


def site_context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: the site's display name and issuer."""
    return {"site_name": settings.SSF_SITE_NAME, "ssf_issuer": ssf_settings.TRANSMITTER_ISSUER}


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "example/home.html",
        {
            "session_cookie_name": settings.SESSION_COOKIE_NAME,
            "discovery_url": ssf_settings.absolute_url(c.WELL_KNOWN_SSF),
        },
    )


@never_cache
def whoami(request: HttpRequest) -> JsonResponse:
    """Who the session cookie authenticates, as JSON (the demo and the e2e tests use it)."""
    user = request.user
    return JsonResponse(
        {
            "site": settings.SSF_SITE_NAME,
            "issuer": ssf_settings.TRANSMITTER_ISSUER,
            "authenticated": bool(user.is_authenticated),
            "username": user.get_username() if user.is_authenticated else None,
            "email": getattr(user, "email", None) if user.is_authenticated else None,
        }
    )


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "example/dashboard.html")


@never_cache
@staff_member_required
def dashboard_json(request: HttpRequest) -> JsonResponse:
    """The dashboard's data; ``?limit=N`` (at most 500) rows of received and sent SETs."""
    try:
        limit = int(request.GET.get("limit", DASHBOARD_ROWS))
    except ValueError:
        return JsonResponse({"error": "limit must be an integer"}, status=400)
    return JsonResponse(data.snapshot(limit=max(1, min(limit, DASHBOARD_MAX_ROWS))))
