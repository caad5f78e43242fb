"""URLconf of the receiver app: the per-stream push endpoint and our public encryption keys.

Include it at the site root (or under any prefix):
``path("", include("django_ssf.receiver.urls"))``.

Route names start with ``ssf-receiver-``.
"""

from django.urls import path

from . import views

urlpatterns = [
    path("ssf/receiver/push/<str:push_id>", views.push_endpoint, name="ssf-receiver-push"),
    path("ssf/receiver/jwks.json", views.encryption_jwks, name="ssf-receiver-jwks"),
    # Our private_key_jwt client keys (RFC 7523), registered as jwks_uri at transmitters.
    path("ssf/receiver/client-jwks.json", views.client_jwks, name="ssf-receiver-client-jwks"),
]
