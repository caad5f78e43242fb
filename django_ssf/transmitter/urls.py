"""URL routes of the transmitter (filled in by the transmitter work)."""

urlpatterns: list = []
