"""Outbound HTTP to URLs the shop did not write itself: an allow-list, and no private addresses.

An image URL comes from catalog data; a redirect can point anywhere. Without a guard a worker
fetches ``http://169.254.169.254/`` (the cloud's metadata service, with credentials) or an
internal admin port for whoever controls the URL. So every connection is checked where it is
made: the host must be allowed, and the address it resolves to must be public unless the host
is listed explicitly. The check runs in the connection itself (the transport's network backend
connects to the very address that was checked), so DNS answering differently on a second lookup
(rebinding) does not get past it, and every redirect hop is a new, checked connection.

``SHOPJOBS_OUTBOUND_ALLOWED_HOSTS``: empty means any host with a public address; otherwise a
comma-separated list of ``host``, ``host:port`` or ``*.domain``. A listed ``host`` or
``host:port`` (not a wildcard) may resolve to a private or loopback address: the operator said so.

Every configurable client goes through it (payment provider, warehouse, carrier, SMS gateway,
price sources, image downloads, the health probes of the parties). A configured endpoint's own
host is allowed by being configured, but like any other host it must resolve to a public address
unless it is listed: the loopback stand-ins of development and tests are listed explicitly, and
production refuses loopback and private endpoints at start unless they are.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from jobcore.errors import PermanentError

MAX_REDIRECTS = 5
REDIRECTS = {301, 302, 303, 307, 308}


class OutboundRefused(PermanentError):
    """The URL's host is not allowed or resolves to a private address: never fetched, not retried."""


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which hosts outbound requests may reach; ``allowed`` empty means any public host."""

    allowed: tuple[str, ...] = ()
    # endpoints configured elsewhere (``host:port``): reachable hosts, but only at public
    # addresses unless also in ``allowed``; with them, hosts off both lists are refused
    configured: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: str, *also: str) -> Policy:
        """From the setting, plus hosts the operator configured elsewhere (``host[:port]``)."""
        entries = [e.strip().lower() for e in raw.split(",") if e.strip()]
        return cls(tuple(dict.fromkeys(entries)), tuple(dict.fromkeys(a.lower() for a in also)))

    @classmethod
    def for_urls(cls, raw: str, *urls: str) -> Policy:
        """From the setting, plus the hosts of the configured endpoint ``urls``."""
        return cls.parse(raw, *(host_port(url) for url in urls))

    def _listed(self, host: str, port: int) -> bool:
        return host in self.allowed or f"{host}:{port}" in self.allowed

    def listed(self, url: str) -> bool:
        """Whether ``url``'s host is listed explicitly (so it may be a private address)."""
        parts = urlsplit(url)
        return self._listed(str(parts.hostname).lower(), _port(parts.scheme, parts.port))

    def permits_host(self, host: str, port: int) -> bool:
        if not self.allowed and not self.configured:
            return True
        if self._listed(host, port) or f"{host}:{port}" in self.configured:
            return True
        return any(e.startswith("*.") and host.endswith(e[1:]) for e in self.allowed)

    def address(self, host: str, port: int) -> str:
        """The checked address to connect to for ``host:port``; ``OutboundRefused`` otherwise."""
        host = host.lower().strip("[]")
        if not self.permits_host(host, port):
            raise OutboundRefused(f"host {host}:{port} is not in SHOPJOBS_OUTBOUND_ALLOWED_HOSTS")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = [str(info[4][0]) for info in infos]
        if not self._listed(host, port):
            for address in addresses:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
                if not ip.is_global or ip.is_multicast:
                    raise OutboundRefused(
                        f"host {host} resolves to {address}, a private, loopback or link-local "
                        "address (list the host in SHOPJOBS_OUTBOUND_ALLOWED_HOSTS if meant)"
                    )
        return addresses[0]


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


def host_port(url: str) -> str:
    """``host:port`` of ``url`` (the scheme's default port when none is given)."""
    parts = urlsplit(url)
    return f"{str(parts.hostname).lower()}:{_port(parts.scheme, parts.port)}"


def private_address(host: str) -> bool:
    """Whether ``host`` is written as a loopback, private or link-local address (or localhost);
    a name is judged after resolution, at connect time."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global or ip.is_multicast


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the policy checked, resolving each host once per connection."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self.policy.address(host, port)
        # TLS still verifies and sends SNI for ``host``: httpcore takes it from the request's URL
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


def client(policy: Policy, timeout: httpx.Timeout, **options: Any) -> httpx.Client:
    """A client whose every connection is checked; no proxies from the environment, no redirects.

    ``options`` go to ``httpx.Client`` (``base_url``, ``headers``).
    """
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=_GuardedBackend(policy)
    )
    return httpx.Client(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False, **options
    )


def _check_url(policy: Policy, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"{url!r:.200} is not an http(s) URL")
    port = _port(parts.scheme, parts.port)
    if not policy.permits_host(parts.hostname.lower(), port):
        raise OutboundRefused(
            f"host {parts.hostname}:{port} is not in SHOPJOBS_OUTBOUND_ALLOWED_HOSTS"
        )


@contextmanager
def stream(
    policy: Policy, url: str, timeout: httpx.Timeout, **kwargs: Any
) -> Iterator[httpx.Response]:
    """``GET url`` streamed, following at most MAX_REDIRECTS redirects, each hop checked.

    Raises ``OutboundRefused`` (permanent) for a refused hop, and ``httpx``'s own errors otherwise.
    """
    with client(policy, timeout) as http:
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(policy, url)
            request = http.build_request("GET", url, **kwargs)
            response = http.send(request, stream=True)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                try:
                    yield response
                finally:
                    response.close()
                return
            response.close()
            url = urljoin(url, location)
        raise OutboundRefused(f"more than {MAX_REDIRECTS} redirects")
