"""URL routes of the receiver (filled in by the receiver work)."""

urlpatterns: list = []
