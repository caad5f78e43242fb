"""The Prometheus scrape endpoint a host adds to its URLconf (``metrics`` extra).

::

    from django_ssf.metrics import metrics_view

    urlpatterns = [..., path("ssf/metrics", metrics_view, name="ssf-metrics")]

The page is prometheus-client's own text exposition (``generate_latest``), never a
hand-written format. It names streams and reveals traffic volumes, so it is not public:
a request passes with ``Authorization: Bearer <METRICS_BEARER_TOKEN>`` (what Prometheus
sends with ``authorization: {credentials: ...}``; compared in constant time) or from a
logged-in staff user (a human look); anything else is a ``401``. A bearer token rather
than an IP rule because the site usually sits behind a proxy that hides the scraper's
address; a site that prefers a separate internal port can serve the same registry with
``prometheus_client.start_http_server`` and leave this view out.

With ``PROMETHEUS_MULTIPROC_DIR`` set (several worker processes, Celery workers that
deliver), the page aggregates every process's files in that directory, plus the
database gauges of the installed roles.
"""

from __future__ import annotations

import hmac
import os

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from .conf import ssf_settings
from .core import metrics

__all__ = ["authorized", "metrics_view"]


def authorized(request: HttpRequest) -> bool:
    """The configured bearer token, or a logged-in active staff user."""
    token = ssf_settings.METRICS_BEARER_TOKEN
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if token and scheme.lower() == "bearer" and credentials:
        if hmac.compare_digest(credentials.strip().encode(), str(token).encode()):
            return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _exposition() -> tuple[bytes, str]:
    import prometheus_client
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry)
        for collector in metrics.collectors():
            registry.register(collector)
    else:
        registry = prometheus_client.REGISTRY
    return prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST


@login_not_required  # Prometheus has no session: never redirect it to a login page
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Serve the metrics of this process (or of every process, in multiprocess mode)."""
    if not authorized(request):
        response = HttpResponse(
            "authentication required\n", status=401, content_type="text/plain; charset=utf-8"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not metrics.ENABLED:
        return HttpResponse(
            "metrics need prometheus-client: pip install django-ssf[metrics]\n",
            status=501,
            content_type="text/plain; charset=utf-8",
        )
    body, content_type = _exposition()
    return HttpResponse(body, content_type=content_type)
