"""Outbound requests to addresses an operator did not mean to expose (SSRF guard).

A webhook URL is typed by a manager, and the worker then POSTs escalation payloads to it and shows
the status code: without a guard that is a port scanner for the internal network. Every address
a URL's host resolves to must be public, unless it lies in ``WEBHOOK_ALLOWED_NETWORKS`` (the
operator's explicit list, e.g. ``10.20.0.0/16`` for receivers inside the company).

The check is made when a subscription is saved and again at send time, after resolving the name;
the connection then goes to the address that was checked (not to the name again), so a DNS answer
that changes between the check and the connect (rebinding) cannot swap in an internal address.

Refused: loopback, private (RFC 1918, unique-local ``fc00::/7``), link-local (including the cloud
metadata address 169.254.169.254), shared (100.64/10), multicast, reserved, unspecified and
documentation ranges, i.e. everything ``ipaddress`` does not call global, plus the IPv4 address
inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address. Decimal, octal and hex spellings of an
IPv4 address (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) are read the way the C library reads
them, which is how a connection would read them.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterable

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(ValueError):
    """The host is, or resolves to, an address that may not be reached."""


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in getattr(settings, "WEBHOOK_ALLOWED_NETWORKS", ())]


def _embedded(address: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo's client, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, allowed: Iterable = ()) -> str | None:
    """Why ``address`` may not be reached, or None."""
    if any(address in network for network in allowed):
        return None
    inner = _embedded(address)
    if inner is not None:
        reason = refusal(inner, allowed)
        return f"{reason} (inside {address})" if reason else None
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_private:
        return f"{address} is a private address"
    if address.is_reserved or not address.is_global:
        return f"{address} is not a public address"
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (numeric spellings included); ``socket.gaierror`` if none."""
    host = host.strip("[]")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def checked_address(host: str, port: int) -> IPAddress:
    """The address to connect to: ``host`` resolved, every answer checked (one refused address
    refuses the host). Raises ``Refused`` or ``socket.gaierror``."""
    addresses = resolve(host, port)
    allowed = allowed_networks()
    for address in addresses:
        reason = refusal(address, allowed)
        if reason:
            raise Refused(
                f"The host {host} is refused: {reason}; webhooks are only sent to public addresses "
                "(an operator can allow internal networks with WEBHOOK_ALLOWED_NETWORKS)."
            )
    return addresses[0]


def check_host_now(host: str, port: int) -> None:
    """The check made when a URL is saved: a host that does not resolve yet is let through (it is
    checked again, and must resolve, when something is sent)."""
    try:
        checked_address(host, port)
    except socket.gaierror:
        return


class GuardedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address`` (already checked), speaking to ``host`` (Host header)."""

    def __init__(self, host: str, port: int, *, address: IPAddress, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.address), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class GuardedHTTPSConnection(http.client.HTTPSConnection):
    """As above over TLS: the certificate is checked against ``host`` (SNI and hostname)."""

    def __init__(self, host: str, port: int, *, address: IPAddress, timeout: float) -> None:
        self.tls_context = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls_context)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((str(self.address), self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)
