"""Delivery routes: the RFC 8936 poll endpoint, one URL per stream (SSF §6.1.2)."""

from django.urls import path

from .poll_views import PollView

urlpatterns = [
    path("ssf/poll/<str:stream_id>", PollView.as_view(), name="ssf-poll"),
]
