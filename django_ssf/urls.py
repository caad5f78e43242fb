"""URLconf of django-ssf; include it at the site root: ``path("", include("django_ssf.urls"))``.

The discovery document must live at ``/.well-known/ssf-configuration`` (SSF §7.2), which
is why this URLconf is meant to be mounted at the root rather than under a prefix. Route
names all start with ``ssf-`` (e.g. ``reverse("ssf-poll", kwargs={"stream_id": ...})``).
"""

from django.urls import include, path

urlpatterns = [
    path("", include("django_ssf.transmitter.urls")),
    path("", include("django_ssf.transmitter.delivery_urls")),
    path("", include("django_ssf.receiver.urls")),
]
