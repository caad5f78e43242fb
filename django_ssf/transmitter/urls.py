"""URLconf of the transmitter app: discovery, metadata, the control plane and polling.

Include it at the site root: ``path("", include("django_ssf.transmitter.urls"))``. The
discovery document must live at ``/.well-known/ssf-configuration`` (SSF §7.2), which is
why this URLconf is meant to be mounted at the root rather than under a prefix. Route
names all start with ``ssf-`` (e.g. ``reverse("ssf-poll", kwargs={"stream_id": ...})``).

Exact routes without trailing slashes: ``APPEND_SLASH`` never redirects them because they
resolve as requested (SSF §7.2 discovery must not redirect).
"""

from django.urls import URLPattern, path

from .checks import missing_required_apps


def _routes() -> list[URLPattern]:
    from . import views
    from .poll_views import poll_endpoint
    from .registration_views import ClientConfigurationView, RegistrationView

    return [
        # Discovery (SSF §7.2) with the path-inserted form for an issuer with a path (§7.2.1).
        path(
            ".well-known/ssf-configuration",
            views.SSFConfigurationView.as_view(),
            name="ssf-configuration",
        ),
        path(
            ".well-known/ssf-configuration/<path:issuer_path>",
            views.SSFConfigurationPathView.as_view(),
            name="ssf-configuration-path",
        ),
        # OAuth 2.0 Protected Resource Metadata (RFC 9728 §3).
        path(
            ".well-known/oauth-protected-resource",
            views.ProtectedResourceMetadataView.as_view(),
            name="ssf-protected-resource",
        ),
        path(
            ".well-known/oauth-protected-resource/<path:issuer_path>",
            views.ProtectedResourceMetadataPathView.as_view(),
            name="ssf-protected-resource-path",
        ),
        # Authorization Server Metadata of the built-in token endpoint (RFC 8414 §3).
        path(
            ".well-known/oauth-authorization-server",
            views.AuthorizationServerMetadataView.as_view(),
            name="ssf-authorization-server",
        ),
        path(
            ".well-known/oauth-authorization-server/<path:issuer_path>",
            views.AuthorizationServerMetadataPathView.as_view(),
            name="ssf-authorization-server-path",
        ),
        path("ssf/jwks.json", views.JWKSView.as_view(), name="ssf-jwks"),
        path("ssf/oauth/token", views.SSFTokenView.as_view(), name="ssf-token"),
        # Dynamic client registration (RFC 7591 §3) and management (RFC 7592 §2); 404
        # unless SSF["TRANSMITTER_REGISTRATION_ENABLED"].
        path("ssf/oauth/register", RegistrationView.as_view(), name="ssf-register"),
        path(
            "ssf/oauth/register/<str:client_id>",
            ClientConfigurationView.as_view(),
            name="ssf-register-client",
        ),
        # Management API (SSF §8.1).
        path("ssf/streams", views.StreamsView.as_view(), name="ssf-streams"),
        path("ssf/status", views.StatusView.as_view(), name="ssf-status"),
        path("ssf/subjects:add", views.AddSubjectView.as_view(), name="ssf-subjects-add"),
        path("ssf/subjects:remove", views.RemoveSubjectView.as_view(), name="ssf-subjects-remove"),
        path("ssf/verify", views.VerificationView.as_view(), name="ssf-verify"),
        # Delivery: the RFC 8936 poll endpoint, one URL per stream (SSF §6.1.2); an async
        # view, so that a long poll held under ASGI costs no thread.
        path("ssf/poll/<str:stream_id>", poll_endpoint, name="ssf-poll"),
    ]


# Without django-oauth-toolkit or DRF installed the views cannot even be imported; serve
# nothing, so that the system checks (E014/E015) can say so instead of a traceback.
urlpatterns: list[URLPattern] = [] if missing_required_apps() else _routes()
