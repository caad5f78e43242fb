"""Transmitter discovery (SSF §7.2) and authorization-server discovery (RFC 9728, RFC 8414).

The configuration URL is built by *inserting* ``/.well-known/ssf-configuration`` between
the host and the path of the issuer, after removing a trailing ``/`` from the path
(SSF §7.2.1). The returned ``issuer`` must be identical to the issuer we started from
(SSF §7.2.4). Legacy transmitters are found at ``/.well-known/risc-configuration``
(SSF §7.2.2) or the draft ``/.well-known/sse-configuration``; those are tried, in that
order, when the SSF location answers 404.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import OutboundRequestError, SSFError
from ..core.http_errors import describe_request_error

logger = logging.getLogger(__name__)

__all__ = [
    "DiscoveryError",
    "DiscoveryResult",
    "authorization_server_metadata",
    "discover",
    "discover_authorization_server",
    "http_session",
    "issuer_from_configuration_url",
    "well_known_url",
]

WELL_KNOWN_SUFFIXES = (c.WELL_KNOWN_SSF, c.WELL_KNOWN_RISC, c.WELL_KNOWN_SSE)


class DiscoveryError(SSFError):
    """Discovery failed: unreachable, not JSON, or the issuer is not the one we asked for."""


@dataclass
class DiscoveryResult:
    issuer: str
    configuration_url: str
    metadata: dict[str, Any]

    @property
    def is_legacy_location(self) -> bool:
        return c.WELL_KNOWN_SSF not in self.configuration_url


def http_session() -> requests.Session:
    """The outbound session every receiver request uses (with the SSRF guard)."""
    from ..core.http import safe_session

    return safe_session()


def timeout() -> float:
    return float(ssf_settings.RECEIVER_HTTP_TIMEOUT)


def check_url(url: str, what: str) -> str:
    """``https`` (or loopback http when allowed) with a host, else :class:`DiscoveryError`."""
    from ..core.http import check_endpoint_url

    try:
        check_endpoint_url(url)
    except ValueError as exc:
        raise DiscoveryError(f"{what} {url!r} is not acceptable: {exc}") from exc
    return url


def well_known_url(issuer: str, suffix: str = c.WELL_KNOWN_SSF) -> str:
    """Insert ``suffix`` between the host and the path of ``issuer`` (SSF §7.2.1, RFC 8615).

    >>> well_known_url("https://tr.example.com/issuer1/")
    'https://tr.example.com/.well-known/ssf-configuration/issuer1'
    """
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, suffix + path, "", ""))


def issuer_from_configuration_url(url: str) -> str | None:
    """Undo the insertion: ``https://h/.well-known/ssf-configuration/x`` → ``https://h/x``."""
    parts = urlsplit(url)
    for suffix in WELL_KNOWN_SUFFIXES:
        if parts.path == suffix or parts.path.startswith(suffix + "/"):
            rest = parts.path[len(suffix):]
            return urlunsplit((parts.scheme, parts.netloc, rest, "", ""))
    return None


def _get_json(session: requests.Session, url: str, what: str) -> tuple[int, Any]:
    """GET ``url``: its status, and its JSON body when the status is 200.

    The body is read bounded in size (``HTTP_MAX_RESPONSE_BYTES``) and time (the request
    timeout): an endless or trickling document is a :class:`DiscoveryError`.
    """
    from ..core.http import bounded_request, parse_json_response

    try:
        response = bounded_request(
            session, "GET", url, timeout=timeout(), headers={"Accept": c.JSON_MEDIA_TYPE}
        )
    except (requests.RequestException, OutboundRequestError) as exc:
        raise DiscoveryError(
            f"could not fetch {what} at {url}: {describe_request_error(exc, url)}"
        ) from exc
    if response.status_code != 200:
        return response.status_code, None
    try:
        return 200, parse_json_response(response.content)
    except ValueError as exc:
        raise DiscoveryError(f"{what} at {url} is not JSON") from exc


def _issuers_match(expected: str, actual: str, *, lenient: bool) -> bool:
    if expected == actual:
        return True
    # Lenient (legacy transmitters, or a configuration URL given instead of an issuer,
    # where the trailing slash cannot be recovered): ignore one trailing slash.
    return lenient and expected.rstrip("/") == actual.rstrip("/")


def discover(
    issuer_or_url: str,
    *,
    legacy: bool = False,
    session: requests.Session | None = None,
) -> DiscoveryResult:
    """Fetch and validate a transmitter's configuration metadata (SSF §7.2).

    ``issuer_or_url`` is the issuer, or the configuration URL itself (recognised by its
    ``/.well-known/...-configuration`` path). Raises :class:`DiscoveryError`.
    """
    session = session or http_session()
    check_url(issuer_or_url, "issuer")
    from_config_url = issuer_from_configuration_url(issuer_or_url)
    if from_config_url is not None:
        candidates = [issuer_or_url]
        expected = from_config_url
        lenient = True
    else:
        expected = issuer_or_url
        candidates = [well_known_url(expected, suffix) for suffix in WELL_KNOWN_SUFFIXES]
        lenient = legacy
    metadata: Any = None
    used = ""
    statuses = []
    for url in candidates:
        status, metadata = _get_json(session, url, "transmitter configuration")
        statuses.append(f"{url} → {status}")
        if status == 200:
            used = url
            break
        if status != 404:
            break
    if not used:
        raise DiscoveryError("no transmitter configuration found: " + "; ".join(statuses))
    if not isinstance(metadata, dict):
        raise DiscoveryError(f"transmitter configuration at {used} is not a JSON object")
    issuer = metadata.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise DiscoveryError(f"transmitter configuration at {used} has no issuer")
    if not _issuers_match(expected, issuer, lenient=lenient or used != candidates[0]):
        raise DiscoveryError(
            f"issuer mismatch: asked for {expected!r}, configuration at {used} says {issuer!r}"
            " (SSF §7.2.4 requires them to be identical)"
        )
    for key in (
        "jwks_uri",
        "configuration_endpoint",
        "status_endpoint",
        "add_subject_endpoint",
        "remove_subject_endpoint",
        "verification_endpoint",
    ):
        value = metadata.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise DiscoveryError(f"{key} in the transmitter configuration is not a string")
            check_url(value, key)
    return DiscoveryResult(issuer=issuer, configuration_url=used, metadata=metadata)


def discover_authorization_server(
    resource: str, *, session: requests.Session | None = None
) -> tuple[str, list[str]]:
    """``(token_endpoint, scopes)`` of the resource's authorization server.

    See :func:`authorization_server_metadata`; raises :class:`DiscoveryError`.
    """
    meta, scopes = authorization_server_metadata(resource, session=session)
    return check_url(meta["token_endpoint"], "token_endpoint"), scopes


def authorization_server_metadata(
    resource: str, *, session: requests.Session | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Find the token endpoint for a protected resource (the transmitter).

    RFC 9728 protected-resource metadata gives ``authorization_servers[0]`` (and the
    ``scopes_supported`` a client MUST use, IOP §2.7.2); RFC 8414 metadata, or OIDC
    discovery, of that server gives ``token_endpoint``. When the transmitter publishes no
    RFC 9728 document, the issuer itself is tried as the authorization server. A document
    naming another ``resource`` (RFC 9728 §3.3) or another ``issuer`` (RFC 8414 §3.3) is
    refused: it would decide where the client secret is sent.
    Returns ``(metadata, scopes)``: the RFC 8414 document (with a ``token_endpoint``,
    and a ``registration_endpoint`` when the server offers RFC 7591 registration) and the
    RFC 9728 ``scopes_supported``; raises :class:`DiscoveryError`.
    """
    session = session or http_session()
    scopes: list[str] = []
    servers = [resource]
    prm_url = well_known_url(resource, c.WELL_KNOWN_PROTECTED_RESOURCE)
    status, prm = _get_json(session, prm_url, "resource metadata")
    if status == 200 and isinstance(prm, dict):
        # RFC 9728 §3.3: the resource MUST be identical to the one we asked about, or the
        # document MUST NOT be used (it would decide where our client secret goes).
        if prm.get("resource") != resource:
            raise DiscoveryError(
                f"protected-resource metadata at {prm_url} is for resource "
                f"{prm.get('resource')!r}, not {resource!r} (RFC 9728 §3.3)"
            )
        found = prm.get("authorization_servers")
        if isinstance(found, list) and found and all(isinstance(s, str) for s in found):
            servers = [found[0]]
        if isinstance(prm.get("scopes_supported"), list):
            scopes = [s for s in prm["scopes_supported"] if isinstance(s, str)]
    server = servers[0]
    check_url(server, "authorization server")
    for url in (
        well_known_url(server, c.WELL_KNOWN_OAUTH_AS),
        server.rstrip("/") + c.WELL_KNOWN_OIDC,
        well_known_url(server, c.WELL_KNOWN_OIDC),
    ):
        status, meta = _get_json(session, url, "authorization server metadata")
        if status == 200 and isinstance(meta, dict) and isinstance(meta.get("token_endpoint"), str):
            # RFC 8414 §3.3 (and OpenID Connect Discovery §4.3): the issuer MUST be
            # identical to the identifier the metadata URL was built from.
            if meta.get("issuer") != server:
                raise DiscoveryError(
                    f"authorization server metadata at {url} names issuer "
                    f"{meta.get('issuer')!r}, not {server!r} (RFC 8414 §3.3)"
                )
            return meta, scopes
    raise DiscoveryError(
        f"no token endpoint found for {resource}: give one explicitly (--token-endpoint)"
    )
