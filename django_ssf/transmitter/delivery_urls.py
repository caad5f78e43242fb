"""Delivery routes: the RFC 8936 poll endpoint (filled in by the delivery work)."""

urlpatterns: list = []
