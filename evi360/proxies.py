"""The client's address behind trusted proxies, decided once for every consumer.

The ASGI server reports the TCP peer as ``scope["client"]`` (Django's ``REMOTE_ADDR``). Behind a
proxy that peer is the proxy, and the client is in ``X-Forwarded-For``, which anybody can also
send. :class:`ForwardedFor` wraps the Django application (evi360/asgi.py) and rewrites
``scope["client"]`` only when the peer is one of ``EVI360_TRUSTED_PROXIES``: then the header is
read from the right (each proxy appends the address it was reached from), trusted proxies are
skipped, and the first untrusted address is the client. The metrics allow-list, the rate limits,
the login throttle and the logs all read the result. The servers run without their own
proxy-header handling (daphne's takes the leftmost, client-written address), so uvicorn and
daphne agree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Addresses and CIDR networks; ``ValueError`` naming the first entry that is neither (a
    network with host bits set, ``10.0.0.1/8``, is refused too: it is most likely a typo)."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or network ({exc})") from None
    return networks


def _address(text: str) -> Address | None:
    """An address as a proxy writes one: ``1.2.3.4``, ``::1``, ``[::1]``, with or without a port
    (``1.2.3.4:80``, ``[::1]:80``). ``None`` for anything else (``unknown``, names, junk)."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :] if end > 0 else "x"
        if rest and not (rest[0] == ":" and rest[1:].isascii() and rest[1:].isdigit()):
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has at least two colons)
        text, port = text.split(":")
        if not (port.isascii() and port.isdigit()):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d: the same client as a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The rule itself, without ASGI: see :meth:`client`."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def trusts_peer(self, peer: str | None) -> bool:
        return bool(self.networks) and peer is not None and self.trusts(_address(peer))

    def client(self, peer: str | None, forwarded_for: Iterable[str]) -> str | None:
        """The client's address for a request from ``peer`` carrying these ``X-Forwarded-For``
        values (several headers count as one list, in order); ``peer`` itself unless the peer is
        trusted and the header names somebody else.

        Only the entries trusted proxies wrote are read: from the right, up to and including the
        first untrusted address. A malformed one among them means a proxy is misconfigured: the
        header is ignored. Whatever lies left of the client's entry is the client's own text,
        spoofed or junk, and is never read (junk there must not make the client pass for the proxy).
        """
        if not self.trusts_peer(peer):
            return peer
        entries = [entry for value in forwarded_for for entry in value.split(",")]
        if not entries:
            return peer
        address = None
        for entry in reversed(entries):
            address = _address(entry)
            if address is None:
                return peer
            if not self.trusts(address):
                break
        # Every entry trusted: the client is a trusted host itself, the leftmost one.
        return str(address)


class ForwardedFor:
    """ASGI middleware: ``scope["client"]`` (and ``scope["scheme"]``, from a trusted proxy's
    ``X-Forwarded-Proto``) as :class:`TrustedProxies` decides; other requests pass untouched."""

    def __init__(self, app: ASGIApp, trusted: Iterable[Network]) -> None:
        self.app = app
        self.trusted = TrustedProxies(trusted)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.trusted and scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if peer and self.trusted.trusts_peer(peer[0]):
                scope = dict(scope)
                self._rewrite(scope, peer)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope, peer: tuple[str, int]) -> None:
        forwarded, proto = [], []
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto.append(value.decode("latin-1").strip().lower())
        client = self.trusted.client(peer[0], forwarded)
        if client != peer[0]:
            scope["client"] = (client, 0)
        # One value, http or https: anything else is not what our proxy writes.
        if len(proto) == 1 and proto[0] in ("http", "https"):
            secure = proto[0] == "https"
            if scope["type"] == "websocket":
                scope["scheme"] = "wss" if secure else "ws"
            else:
                scope["scheme"] = proto[0]
