"""Outbound HTTP with an SSRF guard.

Push delivery, the receiver's control-plane client and JWKS fetching all send requests to
URLs that a remote party chose. :func:`safe_session` returns a ``requests.Session`` whose
connections check the **resolved** address at connect time, right before the socket
connects, so neither an IP literal nor a hostname that resolves (or re-resolves, "DNS
rebinding") to an internal address gets through:

* loopback (127.0.0.0/8, ::1) unless allowed (default: ``HTTP_ALLOW_INSECURE_LOOPBACK``);
* private (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) unless allowed
  (default: ``HTTP_ALLOW_PRIVATE_NETWORKS``);
* always: link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10),
  unspecified (0.0.0.0, ::), multicast, and every other special-purpose range that is not
  globally reachable; IPv4 addresses embedded in IPv6 (IPv4-mapped, NAT64, 6to4) are
  judged by the IPv4 address they carry.

Networks listed in ``HTTP_ALLOWED_NETWORKS`` are always allowed. TLS is untouched:
the certificate is still verified against the URL's hostname (SNI included). Redirects
are not followed, and environment proxies are ignored (a proxy would resolve and connect
on our behalf, out of the guard's sight).

A refusal raises :class:`BlockedAddressError`: an
:class:`~django_ssf.core.errors.OutboundRequestError` (so callers can tell "refused by
policy" from a network failure by catching it first) that is also a
``requests.exceptions.ConnectionError`` (so generic ``requests`` handling still copes).

:func:`check_endpoint_url` is the static check made when an endpoint URL is configured.
"""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.poolmanager import PoolManager
from urllib3.util.connection import allowed_gai_family

from .constants import USER_AGENT_PRODUCT
from .errors import OutboundRequestError

__all__ = [
    "AddressPolicy",
    "BlockedAddressError",
    "ResponseBodyError",
    "SafeHTTPAdapter",
    "SafeSession",
    "bounded_request",
    "check_endpoint_url",
    "is_loopback_host",
    "max_response_bytes",
    "parse_json_response",
    "read_bounded",
    "read_limited",
    "safe_session",
    "user_agent",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# socket.getaddrinfo's signature: (host, port, family, type) -> [(af, type, proto, cn, sa)]
Resolver = Callable[..., list[tuple[Any, ...]]]

# Address categories, as named in refusal messages.
LOOPBACK = "loopback"
PRIVATE = "private"
LINK_LOCAL = "link-local"
UNSPECIFIED = "unspecified"
MULTICAST = "multicast"
RESERVED = "reserved"

_PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_NAT64_NETWORKS: tuple[ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # RFC 6052 well-known prefix
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # RFC 8215 local-use prefix
)


class BlockedAddressError(OutboundRequestError, requests.exceptions.ConnectionError):
    """The SSRF guard refused to connect: every address of the host is forbidden.

    ``host`` is the host from the URL, ``refused`` the ``(address, category)`` pairs.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        refused: Iterable[tuple[str, str]] = (),
        request: Any = None,
    ) -> None:
        requests.exceptions.ConnectionError.__init__(self, message, request=request)
        self.host = host
        self.refused = list(refused)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class _AddressRefused(Exception):
    """Raised inside urllib3; deliberately not an ``OSError`` so urllib3 neither retries
    nor wraps it. :class:`SafeHTTPAdapter` turns it into :class:`BlockedAddressError`."""

    def __init__(self, message: str, host: str, refused: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.message, self.host, self.refused = message, host, refused


def _parse_ip(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # IPv6 zone index
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _category(ip: IPAddress) -> str | None:
    """The category that makes ``ip`` non-public, or ``None`` for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and any(ip in net for net in _NAT64_NETWORKS):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _category(embedded)
    if ip.is_unspecified:
        return UNSPECIFIED
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if ip.is_multicast:
        return MULTICAST
    if any(ip in net for net in _PRIVATE_NETWORKS if net.version == ip.version):
        return PRIVATE
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return RESERVED
    if not ip.is_global:
        return RESERVED
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses an outbound connection may use."""

    allow_loopback: bool = False
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    # getaddrinfo-compatible resolver; None means socket.getaddrinfo (looked up per call).
    resolver: Resolver | None = field(default=None, compare=False)

    def refusal_reason(self, address: str | IPAddress) -> str | None:
        """Why ``address`` may not be connected to (its category), or ``None`` if it may."""
        ip = address if not isinstance(address, str) else _parse_ip(address)
        if ip is None:
            return RESERVED
        if any(ip in net for net in self.allowed_networks if net.version == ip.version):
            return None
        category = _category(ip)
        if category == LOOPBACK and self.allow_loopback:
            return None
        if category == PRIVATE and self.allow_private:
            return None
        return category

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        resolver = self.resolver or socket.getaddrinfo
        return list(resolver(host, port, allowed_gai_family(), socket.SOCK_STREAM))


def _policy_from_settings(
    allow_loopback: bool | None,
    allow_private: bool | None,
    allowed_networks: Iterable[str] | None,
    resolver: Resolver | None,
) -> AddressPolicy:
    from django_ssf.conf import ssf_settings  # lazily: core stays light at import time

    if allow_loopback is None:
        allow_loopback = bool(ssf_settings.HTTP_ALLOW_INSECURE_LOOPBACK)
    if allow_private is None:
        allow_private = bool(ssf_settings.HTTP_ALLOW_PRIVATE_NETWORKS)
    if allowed_networks is None:
        allowed_networks = ssf_settings.HTTP_ALLOWED_NETWORKS or ()
    try:
        networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
    except ValueError as exc:
        raise ValueError(f"HTTP_ALLOWED_NETWORKS: {exc}") from exc
    return AddressPolicy(allow_loopback, allow_private, networks, resolver)


# ---- urllib3 plumbing --------------------------------------------------------------------


class _GuardedConnectionMixin:
    """Replaces urllib3's socket creation with resolve → check → connect.

    Only ``_new_conn`` changes; TLS wrapping, hostname verification and SNI in
    ``HTTPSConnection.connect`` still use the URL's host.
    """

    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any
    _dns_host: str

    def __init__(self, *args: Any, ssf_policy: AddressPolicy, **kwargs: Any) -> None:
        self._ssf_policy = ssf_policy
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.rstrip(".")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        policy = self._ssf_policy
        try:
            infos = policy.resolve(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        allowed: list[tuple[Any, ...]] = []
        refused: list[tuple[str, str]] = []
        for info in infos:
            address = str(info[4][0])
            reason = policy.refusal_reason(address)
            if reason is None:
                allowed.append(info)
            elif (address, reason) not in refused:
                refused.append((address, reason))
        if not allowed:
            listed = ", ".join(f"{a} ({r})" for a, r in refused) or "no address"
            target = (
                f"{self.host} is a {refused[0][1]} address"
                if len(refused) == 1 and _parse_ip(self.host) is not None
                else f"{self.host} resolves to {listed}"
            )
            raise _AddressRefused(
                f"refused to connect: {target}, which the outbound HTTP policy does not "
                "allow (see django-ssf's 'security-outbound-http' docs)",
                self.host,
                refused,
            )
        last_error: OSError | None = None
        for af, socktype, proto, _cn, sockaddr in allowed:
            sock = None
            try:
                sock = socket.socket(af, socktype, proto)
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is None or isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except OSError as exc:
                last_error = exc
                if sock is not None:
                    sock.close()
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        assert last_error is not None
        if isinstance(last_error, TimeoutError | socket.timeout):
            raise ConnectTimeoutError(
                self,
                f"Connection to {self.host} timed out. (connect timeout={self.timeout})",
            ) from last_error
        raise NewConnectionError(
            self,  # type: ignore[arg-type]
            f"Failed to establish a new connection: {last_error}",
        ) from last_error


class _HeaderDeadlineSocket:
    """A socket stand-in that bounds the *whole* header phase of a response in time.

    A socket read timeout bounds each ``recv`` only: a peer sending one header byte every
    second never trips a 10 s read timeout and holds the caller forever. While the status
    line and headers are read, every ``recv_into`` gets at most what is left of the
    deadline; once they are parsed (:meth:`headers_done`) reads pass straight through and
    the body is bounded by :func:`read_limited`. Only what ``http.client`` and urllib3 use
    while reading a response is provided; the rest is delegated to the real socket.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._ssf_sock = sock
        self._ssf_deadline: float | None = deadline
        self._ssf_timeout = sock.gettimeout()

    def headers_done(self) -> None:
        self._ssf_deadline = None
        self._ssf_sock.settimeout(self._ssf_timeout)

    def settimeout(self, value: float | None) -> None:
        self._ssf_timeout = value
        self._ssf_sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._ssf_timeout

    def recv_into(self, buffer: Any, *args: Any) -> int:
        deadline = self._ssf_deadline
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the response headers did not arrive in time")
            limit = left if self._ssf_timeout is None else min(left, self._ssf_timeout)
            self._ssf_sock.settimeout(limit)
        return self._ssf_sock.recv_into(buffer, *args)

    def makefile(self, mode: str = "r", buffering: int | None = None, **kwargs: Any) -> Any:
        if mode != "rb":  # pragma: no cover - http.client only reads responses in "rb"
            return self._ssf_sock.makefile(mode, buffering, **kwargs)  # type: ignore[call-overload]
        # What socket.makefile("rb") does, reading through this object's recv_into.
        self._ssf_sock._io_refs += 1  # type: ignore[attr-defined]
        raw = socket.SocketIO(self, "rb")  # type: ignore[arg-type]
        return io.BufferedReader(raw, buffering or io.DEFAULT_BUFFER_SIZE)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssf_sock, name)


class _HeaderDeadlineMixin:
    """Bounds the status line and headers of every response by the read timeout in total."""

    sock: Any
    timeout: Any

    def getresponse(self) -> Any:
        real, timeout = self.sock, self.timeout
        if real is None or not isinstance(timeout, int | float) or timeout <= 0:
            return super().getresponse()  # type: ignore[misc]
        guarded = _HeaderDeadlineSocket(real, time.monotonic() + float(timeout))
        self.sock = guarded
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            guarded.headers_done()
            if self.sock is guarded:
                self.sock = real


class _GuardedHTTPConnection(_HeaderDeadlineMixin, _GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_HeaderDeadlineMixin, _GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedPoolManager(PoolManager):
    """A pool manager whose pools make guarded connections carrying ``policy``."""

    def __init__(self, *args: Any, ssf_policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ssf_policy = ssf_policy
        self.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }

    def _new_pool(
        self,
        scheme: str,
        host: str,
        port: int,
        request_context: dict[str, Any] | None = None,
    ) -> HTTPConnectionPool:
        context = dict(self.connection_pool_kw if request_context is None else request_context)
        # Extra pool keyword arguments reach the connection class (HTTPConnectionPool
        # passes them on as ``conn_kw``).
        context["ssf_policy"] = self._ssf_policy
        return super()._new_pool(scheme, host, port, context)


class SafeHTTPAdapter(HTTPAdapter):
    """A ``requests`` transport adapter whose connections go through :class:`AddressPolicy`."""

    __attrs__ = [*HTTPAdapter.__attrs__, "ssf_policy", "default_timeout"]

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        default_timeout: float | tuple[float, float] | None = (5.0, 30.0),
        **kwargs: Any,
    ) -> None:
        # Set before HTTPAdapter.__init__, which calls init_poolmanager.
        self.ssf_policy = policy
        self.default_timeout = default_timeout
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        self._pool_connections = connections
        self._pool_maxsize = maxsize
        self._pool_block = block
        self.poolmanager = _GuardedPoolManager(
            num_pools=connections,
            maxsize=maxsize,
            block=block,
            ssf_policy=self.ssf_policy,
            **pool_kwargs,
        )

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise OutboundRequestError(
            f"proxies are not supported by django-ssf's outbound HTTP ({proxy!r}): a proxy "
            "would connect on our behalf, out of reach of the address check"
        )

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if timeout is None:
            timeout = self.default_timeout
        try:
            return super().send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
        except _AddressRefused as exc:
            raise BlockedAddressError(
                exc.message, host=exc.host, refused=exc.refused, request=request
            ) from None


class SafeSession(requests.Session):
    """A ``requests.Session`` with the SSRF guard mounted for ``http://`` and ``https://``.

    Redirects are not followed unless ``follow_redirects`` is true (each hop is then still
    checked at connect time). Proxies from the environment are ignored; explicit proxies
    are refused. ``default_timeout`` applies when a request passes no ``timeout``.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        pool_maxsize: int = 10,
        follow_redirects: bool = False,
        default_timeout: float | tuple[float, float] | None = (5.0, 30.0),
    ) -> None:
        super().__init__()
        self.policy = policy
        self.follow_redirects = follow_redirects
        adapter = SafeHTTPAdapter(
            policy,
            default_timeout=default_timeout,
            pool_connections=pool_maxsize,
            pool_maxsize=pool_maxsize,
            max_retries=0,
        )
        self.headers["User-Agent"] = user_agent()
        # Replace requests' default adapters; the guarded one serves both schemes.
        self.adapters.clear()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        if not self.follow_redirects:
            return None
        return super().get_redirect_target(resp)

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Mapping[str, str] | None,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> Any:
        explicit = {**self.proxies, **(proxies or {})}
        merged = super().merge_environment_settings(url, dict(proxies or {}), stream, verify, cert)
        # Keep the CA bundle settings from the environment, drop its proxies.
        merged["proxies"] = {k: v for k, v in explicit.items() if v and k != "no_proxy"}
        return merged

    def rebuild_proxies(
        self, prepared_request: requests.PreparedRequest, proxies: Any
    ) -> dict[str, str]:
        super().rebuild_proxies(prepared_request, proxies)
        return {k: v for k, v in (proxies or {}).items() if v and k != "no_proxy"}


def user_agent() -> str:
    """``django-ssf/<version>``: the ``User-Agent`` of every outbound request.

    The version is the installed distribution's (read from its metadata, so ``core`` does
    not import the package that sits above it).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{USER_AGENT_PRODUCT}/{version('django-ssf')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return USER_AGENT_PRODUCT


def safe_session(
    *,
    allow_loopback: bool | None = None,
    allow_private: bool | None = None,
    pool_maxsize: int = 10,
    allowed_networks: Iterable[str] | None = None,
    follow_redirects: bool = False,
    default_timeout: float | tuple[float, float] | None = (5.0, 30.0),
    resolver: Resolver | None = None,
) -> SafeSession:
    """A ``requests.Session`` that refuses to connect to internal addresses.

    ``allow_loopback=None`` follows the ``HTTP_ALLOW_INSECURE_LOOPBACK`` setting,
    ``allow_private=None`` follows ``HTTP_ALLOW_PRIVATE_NETWORKS`` and ``allowed_networks=None``
    follows ``HTTP_ALLOWED_NETWORKS``. The session keeps connections alive in pools of
    ``pool_maxsize`` per host, so reuse one per worker. ``resolver`` replaces
    ``socket.getaddrinfo`` (tests, custom DNS).
    """
    policy = _policy_from_settings(allow_loopback, allow_private, allowed_networks, resolver)
    return SafeSession(
        policy,
        pool_maxsize=pool_maxsize,
        follow_redirects=follow_redirects,
        default_timeout=default_timeout,
    )


# ---- static URL checks -----------------------------------------------------------------


def is_loopback_host(host: str) -> bool:
    """``localhost`` (and ``*.localhost``, RFC 6761), 127.0.0.0/8, ``::1`` or IPv4-mapped
    loopback. Brackets around IPv6 literals and a trailing dot are accepted."""
    if not isinstance(host, str) or not host:
        return False
    name = host.strip().rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _parse_ip(name)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_endpoint_url(url: str, *, allow_insecure_loopback: bool | None = None) -> None:
    """Check a configured endpoint URL (a push ``endpoint_url``, a transmitter's URLs).

    It must be an absolute ``https`` URL with a host, without userinfo or fragment;
    ``http`` is accepted only for loopback hosts and only when allowed (default: the
    ``HTTP_ALLOW_INSECURE_LOOPBACK`` setting). An IP-literal host that the outbound policy
    would refuse (a private or link-local address, ...) is rejected here already; hostnames
    are checked again, on their resolved addresses, at every connection.

    Raises ``ValueError`` with a message that says what is wrong.
    """
    from django_ssf.conf import ssf_settings

    if allow_insecure_loopback is None:
        allow_insecure_loopback = bool(ssf_settings.HTTP_ALLOW_INSECURE_LOOPBACK)
    if not isinstance(url, str) or not url:
        raise ValueError("the URL must be a non-empty string")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ValueError("the URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"the URL has an invalid host: {exc}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError(f"the URL must be absolute (https://...): {url!r}")
    if scheme not in ("https", "http"):
        raise ValueError(f"the URL must use https, not {parts.scheme!r}: {url!r}")
    if not parts.netloc:
        raise ValueError(f"the URL has no host: {url!r}")
    if "@" in parts.netloc:
        raise ValueError("the URL must not contain userinfo (user:password@)")
    if "#" in url:
        raise ValueError("the URL must not contain a fragment")
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"the URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the URL has an invalid port: {url!r}") from None
    if port == 0:
        raise ValueError(f"the URL has an invalid port: {url!r}")
    ip = _parse_ip(host)
    if ip is None:
        if "[" in parts.netloc:
            raise ValueError(f"the URL has an invalid IPv6 literal: {url!r}")
        try:
            host.encode("idna")
        except UnicodeError:
            raise ValueError(f"the URL has an invalid host name: {host!r}") from None
    loopback = is_loopback_host(host)
    if scheme == "http":
        if not loopback:
            raise ValueError(f"the URL must use https (plain http only for loopback): {url!r}")
        if not allow_insecure_loopback:
            raise ValueError(
                "plain http to a loopback host is not allowed "
                "(set SSF['HTTP_ALLOW_INSECURE_LOOPBACK'] = True for development)"
            )
    if ip is not None:
        policy = _policy_from_settings(allow_insecure_loopback, None, None, None)
        reason = policy.refusal_reason(ip)
        if reason is not None:
            raise ValueError(
                f"the URL's host {host} is a {reason} address, which outbound requests "
                "may not reach"
            )
    elif loopback and not allow_insecure_loopback:
        raise ValueError(f"the URL's host {host} is a loopback name, which is not allowed")


# ---- bounded reads -----------------------------------------------------------------------
#
# Every response django-ssf reads from a remote party (push answers, JWKS, discovery and
# OAuth metadata, tokens, control-plane and poll responses) is read through these
# helpers: up to a byte limit and within a time budget, never "until the peer stops".
# ``requests`` alone bounds neither: its read timeout applies to each socket read, so a
# peer that trickles one byte at a time, or streams an endless body, holds the caller for
# ever.


class ResponseBodyError(requests.exceptions.RequestException):
    """A response body was larger than allowed, or did not arrive within its time budget.

    A ``requests`` exception, so callers that already turn network failures into their own
    error type (``DiscoveryError``, ``ControlPlaneError``, ...) report it the same way.
    ``too_large`` tells the two cases apart: a body over the limit will be over it next
    time too, a slow one may not be.
    """

    def __init__(self, message: str, *, too_large: bool, response: Any = None) -> None:
        super().__init__(message, response=response)
        self.too_large = too_large


def max_response_bytes() -> int:
    """The ``HTTP_MAX_RESPONSE_BYTES`` setting: the largest response body read."""
    from django_ssf.conf import ssf_settings

    return int(ssf_settings.HTTP_MAX_RESPONSE_BYTES)


def read_limited(response: Any, limit: int, max_seconds: float) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of a ``stream=True`` response within ``max_seconds``.

    Returns ``(body, complete)``: ``complete`` is false when the body was cut at the limit
    or the deadline. Each read returns as soon as *some* data arrived (``read1``), so a
    peer trickling bytes is cut off at the deadline: the total is bounded by
    ``max_seconds`` plus one socket read timeout. When the body was read to its end the
    connection goes back to the keep-alive pool; otherwise it is discarded and the rest
    of an oversized or endless body is never read.
    """
    deadline = time.monotonic() + max(0.0, max_seconds)
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    complete = False
    try:
        if hasattr(raw, "read1"):  # urllib3 >= 2
            while size <= limit and time.monotonic() <= deadline:
                chunk = raw.read1(limit + 1 - size, decode_content=True)
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
                size += len(chunk)
            if complete and hasattr(raw, "release_conn"):
                raw.release_conn()  # fully read: keep the connection for the next request
        else:  # pragma: no cover - urllib3 1.x: byte-wise reads never block for long
            iterator = response.iter_content(chunk_size=1)
            while size <= limit and time.monotonic() <= deadline:
                chunk = next(iterator, b"")
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
                size += len(chunk)
    finally:
        response.close()
    body = b"".join(chunks)
    if len(body) > limit:
        return body[:limit], False
    return body, complete


def read_bounded(response: Any, limit: int | None = None, max_seconds: float = 30.0) -> bytes:
    """The whole body of a ``stream=True`` response, or :class:`ResponseBodyError`.

    ``limit`` defaults to ``HTTP_MAX_RESPONSE_BYTES``. Afterwards the body is also
    available as ``response.content`` (and ``.json()``, ``.text``) as usual.
    """
    limit = max_response_bytes() if limit is None else int(limit)
    body, complete = read_limited(response, limit + 1, max_seconds)
    url = getattr(response, "url", "") or "the remote party"
    if len(body) > limit:
        raise ResponseBodyError(
            f"the response of {url} is larger than {limit} bytes", too_large=True,
            response=response,
        )
    if not complete:
        raise ResponseBodyError(
            f"the response of {url} did not arrive within {max_seconds:g} seconds",
            too_large=False, response=response,
        )
    # What requests itself would have stored had it read the body: .json() and .text work.
    response._content = body
    response._content_consumed = True
    return body


def _read_budget(timeout: Any) -> float:
    """The time budget of a body read: the read part of a ``requests`` timeout."""
    if isinstance(timeout, tuple):
        timeout = timeout[-1]
    return 30.0 if timeout is None else float(timeout)


def bounded_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    limit: int | None = None,
    **kwargs: Any,
) -> requests.Response:
    """``session.request(method, url, **kwargs)`` with the body read through
    :func:`read_bounded` (at most ``limit`` bytes, default ``HTTP_MAX_RESPONSE_BYTES``,
    within the request's read timeout).

    The returned response is fully read: ``.content``, ``.text`` and ``.json()`` work.
    Raises what ``session.request`` raises, and :class:`ResponseBodyError`.
    """
    kwargs["stream"] = True
    response = session.request(method, url, **kwargs)
    read_bounded(response, limit, _read_budget(kwargs.get("timeout")))
    return response


def parse_json_response(body: bytes) -> Any:
    """Decode a JSON response body; ``ValueError`` for anything that is not JSON.

    Nesting too deep for the parser is "not JSON" too, never a ``RecursionError``.
    """
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
