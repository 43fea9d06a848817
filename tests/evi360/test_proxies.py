"""The client's address behind trusted proxies (evi360/proxies.py), and /metrics behind them."""

from __future__ import annotations

import httpx
import pytest
from django.core.asgi import get_asgi_application

from evi360.proxies import ForwardedFor, TrustedProxies, parse_networks

PROXIES = TrustedProxies(parse_networks(["127.0.0.1", "10.1.0.0/16", "fd00::/8"]))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # An untrusted peer: its header is its own text, never read.
        ("203.0.113.9", ["10.0.0.1"], "203.0.113.9"),
        ("203.0.113.9", [], "203.0.113.9"),
        # A trusted peer: the address it added, not what the client put in front.
        ("127.0.0.1", ["198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", ["10.0.0.1, 198.51.100.7"], "198.51.100.7"),
        ("127.0.0.1", ["10.0.0.1", "198.51.100.7"], "198.51.100.7"),  # two headers: one list
        ("127.0.0.1", ["10.0.0.1,198.51.100.7 ,  10.1.2.3"], "198.51.100.7"),  # a chain of ours
        ("10.1.9.9", ["198.51.100.7, 10.1.2.3, 127.0.0.1"], "198.51.100.7"),
        # Junk the client wrote, left of its own entry, is not read either.
        ("127.0.0.1", ["not an address, 198.51.100.7"], "198.51.100.7"),
        # Every entry trusted: the client is a trusted host, the leftmost.
        ("127.0.0.1", ["10.1.0.5, 127.0.0.1"], "10.1.0.5"),
        # Malformed where a trusted proxy wrote: the header is ignored, the peer stays.
        ("127.0.0.1", [""], "127.0.0.1"),
        ("127.0.0.1", ["unknown"], "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.7, "], "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.7, garbage"], "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.7,,10.1.0.1"], "127.0.0.1"),
        ("127.0.0.1", ["example.com"], "127.0.0.1"),
        ("127.0.0.1", ["1.2.3.4:x"], "127.0.0.1"),
        ("127.0.0.1", ["[2001:db8::1"], "127.0.0.1"),
        ("127.0.0.1", ["[2001:db8::1]x"], "127.0.0.1"),
        ("127.0.0.1", ["999.1.1.1"], "127.0.0.1"),
        # Ports, as some proxies write them.
        ("127.0.0.1", ["198.51.100.7:4711"], "198.51.100.7"),
        ("127.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::1"),
        # IPv6, written any way: the canonical form comes out.
        ("127.0.0.1", ["2001:DB8:0:0::1"], "2001:db8::1"),
        ("127.0.0.1", ["[2001:db8::1]"], "2001:db8::1"),
        ("fd00::1", ["10.0.0.1, 2001:db8::2"], "2001:db8::2"),
        ("::ffff:127.0.0.1", ["198.51.100.7"], "198.51.100.7"),  # a dual-stack socket's peer
        ("127.0.0.1", ["::ffff:198.51.100.7"], "198.51.100.7"),
        # A peer that is no address (a Unix socket) or none at all is not trusted.
        ("/run/evi360.sock", ["198.51.100.7"], "/run/evi360.sock"),
        (None, ["198.51.100.7"], None),
    ],
)
def test_the_client_is_the_first_untrusted_address_from_the_right(peer, forwarded, client):
    assert PROXIES.client(peer, forwarded) == client


def test_no_trusted_proxies_means_no_header_is_read():
    assert TrustedProxies([]).client("127.0.0.1", ["198.51.100.7"]) == "127.0.0.1"


async def _seen(app_networks: list[str], **scope_changes) -> dict:
    seen: dict = {}

    async def app(scope, receive, send):
        seen.update(scope)

    scope = {
        "type": "http",
        "scheme": "http",
        "client": ("127.0.0.1", 50000),
        "headers": [(b"x-forwarded-for", b"10.0.0.1, 198.51.100.7"), (b"x-forwarded-proto", b"https")],
        **scope_changes,
    }
    await ForwardedFor(app, parse_networks(app_networks))(scope, None, None)
    return seen


async def test_the_asgi_wrapper_sets_client_and_scheme_from_a_trusted_peer_only():
    trusted = await _seen(["127.0.0.1"])
    assert trusted["client"] == ("198.51.100.7", 0) and trusted["scheme"] == "https"
    untrusted = await _seen(["127.0.0.1"], client=("203.0.113.9", 50000))
    assert untrusted["client"] == ("203.0.113.9", 50000) and untrusted["scheme"] == "http"
    nobody = await _seen([])
    assert nobody["client"] == ("127.0.0.1", 50000) and nobody["scheme"] == "http"
    odd = await _seen(["127.0.0.1"], headers=[(b"x-forwarded-proto", b"gopher")])
    assert odd["client"] == ("127.0.0.1", 50000) and odd["scheme"] == "http"
    assert (await _seen(["127.0.0.1"], client=None))["client"] is None
    lifespan = await _seen(["127.0.0.1"], type="lifespan")
    assert lifespan["client"] == ("127.0.0.1", 50000)


@pytest.fixture
def behind_nginx(settings):
    """The app as evi360/asgi.py serves it (without its start-up work), behind a proxy on
    127.0.0.1 that appends to X-Forwarded-For; only 10.0.0.1 may read /metrics."""
    settings.EVI360_METRICS_TOKEN = ""
    settings.EVI360_METRICS_ALLOWED_IPS = ["10.0.0.1"]
    app = ForwardedFor(get_asgi_application(), parse_networks(["127.0.0.1"]))

    def client(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        return httpx.AsyncClient(transport=transport, base_url="http://localhost")

    return client


@pytest.mark.django_db(transaction=True)
async def test_metrics_refuse_a_spoofed_forwarded_address(behind_nginx):
    async with behind_nginx("127.0.0.1") as proxy:
        # A client at 198.51.100.7 claims to be 10.0.0.1; the proxy appends what it saw.
        spoofed = await proxy.get("/metrics", headers={"X-Forwarded-For": "10.0.0.1, 198.51.100.7"})
        assert spoofed.status_code == 403 and spoofed.json()["error"]["code"] == "forbidden"
        # The allowed scraper itself, through the proxy.
        real = await proxy.get("/metrics", headers={"X-Forwarded-For": "10.0.0.1"})
        assert real.status_code == 200 and b"evi360_streams_active" in real.content
    # The header from a peer that is no trusted proxy counts for nothing.
    async with behind_nginx("198.51.100.7") as direct:
        assert (await direct.get("/metrics", headers={"X-Forwarded-For": "10.0.0.1"})).status_code == 403
