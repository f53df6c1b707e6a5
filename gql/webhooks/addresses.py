"""Where webhooks may go (docs/webhooks.md, "Address policy").

Only http(s) URLs with a host. Unless CERTGRAPH_WEBHOOK_ALLOW_PRIVATE is true, a destination
on a private, loopback, link-local, unspecified, multicast or reserved address (IPv4 or IPv6,
IPv4 inside IPv6 included) is refused: when an endpoint is created or its URL changed
(`check_destination`), and again on every connection (`GuardedBackend`), which resolves the
host itself, checks every address it resolves to and connects to a checked address, so a
name that resolves elsewhere by the time of sending (DNS rebinding) is refused as well.

URLs are parsed with httpx, the client that sends them, so what is checked is what is sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

MAX_URL_CHARS = 2000  # the column's size
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# NAT64's well-known prefix: an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlError(ValueError):
    """The URL is not one webhooks can be sent to; the message says why (safe to show)."""


class AddressRefused(Exception):
    """The destination resolves to an address the policy refuses; the message says which."""


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """The address policy of one deployment: from CERTGRAPH_WEBHOOK_ALLOW_PRIVATE, and how
    long a name may take to resolve (CERTGRAPH_WEBHOOK_TIMEOUT)."""

    allow_private: bool = False
    resolve_timeout_seconds: float = 10.0


def parse_url(text: str) -> httpx.URL:
    """The URL, if webhooks may be sent to it at all: http or https, a host, a valid port,
    no credentials, no spaces or control characters. WebhookUrlError otherwise."""
    text = text.strip()
    if not text:
        raise WebhookUrlError("url must not be empty")
    if len(text) > MAX_URL_CHARS:
        raise WebhookUrlError(f"url must be at most {MAX_URL_CHARS} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise WebhookUrlError("url must not contain spaces or control characters")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise WebhookUrlError(f"url is not a valid URL: {exc}") from None
    if url.scheme not in SCHEMES:
        raise WebhookUrlError("url must be an http:// or https:// URL")
    if not url.raw_host:
        raise WebhookUrlError("url must name a host")
    if url.port is not None and not 0 < url.port < 65536:
        raise WebhookUrlError("url's port must be between 1 and 65535")
    if url.userinfo:
        raise WebhookUrlError(
            "url must not carry a user name or password: receivers authenticate certgraph "
            "by the webhook-signature header"
        )
    return url


def port_of(url: httpx.URL) -> int:
    return url.port if url.port is not None else DEFAULT_PORTS[url.scheme]


def refusal(address: IPAddress) -> str | None:
    """Why webhooks may not go to this address ("loopback", "private" ...); None when they
    may. An IPv4 address carried inside IPv6 (mapped, 6to4, NAT64) is judged as itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return refusal(address.ipv4_mapped)
        if address in _NAT64:
            return refusal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and (inner := refusal(address.sixtofour)):
            return inner
        if address.is_site_local:
            return "site-local"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:  # e.g. shared address space (100.64.0.0/10), documentation
        return "non-global"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int, within: float | None) -> list[IPAddress]:
    """Every address `host` resolves to for a TCP connection, in the resolver's order (an IP
    literal is itself). httpcore.ConnectError when it does not resolve, ConnectTimeout when
    the resolver takes longer than `within` seconds."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = _literal(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    if not found:
        raise httpcore.ConnectError(f"{host} does not resolve to an IP address")
    return found


def check_addresses(host: str, addresses: Iterable[IPAddress]) -> None:
    """AddressRefused when any of the addresses is refused."""
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            shown = host if _literal(host) is not None else f"{host} resolves to {address}, which"
            raise AddressRefused(
                f"{shown} is a {reason} address: webhooks may not be sent there "
                "(CERTGRAPH_WEBHOOK_ALLOW_PRIVATE is off)"
            )


async def check_destination(text: str, policy: AddressPolicy) -> str:
    """The URL, stripped, when webhooks may be sent there now: WebhookUrlError for a URL
    that is not one (or whose host does not resolve), AddressRefused for a refused
    destination. Unless private addresses are allowed the host is resolved and every address
    it resolves to checked; the sender checks again on each connection."""
    url = parse_url(text)
    if not policy.allow_private:
        host = url.raw_host.decode("ascii")
        try:
            addresses = await resolve(host, port_of(url), policy.resolve_timeout_seconds)
        except httpcore.ConnectTimeout:
            raise WebhookUrlError(f"url's host {url.host} did not resolve in time") from None
        except httpcore.ConnectError:
            raise WebhookUrlError(f"url's host {url.host} does not resolve") from None
        check_addresses(url.host, addresses)
    return text.strip()


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself: every address a host resolves to
    is checked before any is connected to, and the connection goes to a checked address (TLS
    still verifies the certificate against the URL's host name, which httpcore hands to
    start_tls). With `allow_private` it only resolves."""

    def __init__(
        self, *, allow_private: bool, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.allow_private = allow_private
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port, timeout)
        if not self.allow_private:
            check_addresses(host, addresses)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:  # the next address, as a resolver would
                failure = exc
        assert failure is not None  # resolve() returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
