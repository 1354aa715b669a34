"""Egress policy for webhook URLs: address ranges, URL checks, the resolver, real sessions."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from libs.common.egress import (
    EgressRefused,
    SafeResolver,
    address_refusal,
    check_url,
    ip_literal_guard,
    read_capped,
    safe_session,
)
from tests.infra import serving

REFUSED = [
    ("127.0.0.1", "loopback_address"),
    ("127.255.255.254", "loopback_address"),
    ("::1", "loopback_address"),
    ("10.0.0.1", "private_address"),
    ("10.255.255.255", "private_address"),
    ("172.16.0.1", "private_address"),
    ("172.31.255.255", "private_address"),
    ("192.168.1.1", "private_address"),
    ("100.64.0.1", "private_address"),
    ("100.127.255.254", "private_address"),
    ("fc00::1", "private_address"),
    ("fd12:3456:789a::1", "private_address"),
    ("fec0::1", "private_address"),
    ("169.254.0.1", "link_local_address"),
    ("169.254.255.254", "link_local_address"),
    ("fe80::1", "link_local_address"),
    ("fe80::1%eth0", "link_local_address"),
    ("169.254.169.254", "metadata_address"),
    ("169.254.170.2", "metadata_address"),
    ("100.100.100.200", "metadata_address"),
    ("168.63.129.16", "metadata_address"),
    ("fd00:ec2::254", "metadata_address"),
    ("224.0.0.1", "multicast_address"),
    ("239.255.255.250", "multicast_address"),
    ("ff02::1", "multicast_address"),
    ("ff0e::1", "multicast_address"),
    ("0.0.0.0", "unspecified_address"),
    ("::", "unspecified_address"),
    ("0.1.2.3", "reserved_address"),
    ("192.0.0.1", "reserved_address"),
    ("192.0.0.170", "reserved_address"),
    ("198.18.0.1", "reserved_address"),
    ("198.19.255.255", "reserved_address"),
    ("240.0.0.1", "reserved_address"),
    ("255.255.255.255", "reserved_address"),
    ("192.0.2.1", "reserved_address"),
    ("198.51.100.7", "reserved_address"),
    ("203.0.113.9", "reserved_address"),
    ("2001:db8::1", "reserved_address"),
    ("3fff::1", "reserved_address"),
    ("100::1", "reserved_address"),
    ("64:ff9b:1::1", "reserved_address"),
    # IPv6 forms that carry an IPv4 address are judged by the IPv4 address.
    ("::ffff:127.0.0.1", "loopback_address"),
    ("::ffff:10.1.2.3", "private_address"),
    ("::ffff:169.254.169.254", "metadata_address"),
    ("::ffff:0.0.0.0", "unspecified_address"),
    ("::127.0.0.1", "loopback_address"),  # IPv4-compatible
    ("::8.8.8.8", "reserved_address"),  # IPv4-compatible is deprecated even when public
    ("2002:7f00:1::1", "loopback_address"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::", "metadata_address"),  # 6to4 of 169.254.169.254
    ("2002:c0a8:101::1", "private_address"),  # 6to4 of 192.168.1.1
    ("64:ff9b::7f00:1", "loopback_address"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "metadata_address"),
    ("64:ff9b::a00:1", "private_address"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback_address"),  # Teredo client 127.0.0.1
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "41.210.128.1",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.1",
    "192.169.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_internal_addresses_are_refused_with_their_reason(address: str, reason: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_egress_refused_names_its_reason() -> None:
    refusal = EgressRefused("private_address", "10.0.0.1")
    assert refusal.reason == "private_address"
    assert str(refusal) == "private_address: 10.0.0.1"
    # aiohttp would wrap an OSError raised by the resolver and hide its type from callers.
    assert not isinstance(refusal, OSError)


def test_a_clean_url_is_returned_without_its_fragment() -> None:
    url = check_url(
        "https://hooks.example.com:8443/sms?x=1#top", allow_private=False, require_https=True
    )
    assert str(url) == "https://hooks.example.com:8443/sms?x=1"


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/sms",
        "https://8.8.8.8/sms",
        "https://[2606:4700:4700::1111]/sms",
        "https://xn--bcher-kva.example/",
        "https://hooks.example.com./sms",
    ],
)
def test_public_urls_pass(url: str) -> None:
    check_url(url, allow_private=False, require_https=False)


@pytest.mark.parametrize(
    ("url", "require_https", "reason"),
    [
        ("ftp://hooks.example.com/", False, "bad_scheme"),
        ("file:///etc/passwd", False, "bad_scheme"),
        ("gopher://hooks.example.com:70/", False, "bad_scheme"),
        ("//hooks.example.com/sms", False, "bad_scheme"),
        ("http://hooks.example.com/sms", True, "bad_scheme"),
        ("https://user:secret@hooks.example.com/", False, "credentials_in_url"),
        ("https://user@hooks.example.com/", False, "credentials_in_url"),
        ("https://:secret@hooks.example.com/", False, "credentials_in_url"),
        ("http:///sms", False, "no_host"),
        ("https://", False, "no_host"),
        ("https://hooks.example.com:0/", False, "bad_port"),
        ("https://hooks.example.com:65536/", False, "bad_port"),
        ("https://hooks.example.com:https/", False, "bad_port"),
    ],
)
def test_malformed_urls_are_refused(url: str, require_https: bool, reason: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        check_url(url, allow_private=False, require_https=require_https)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback_address"),
        ("http://127.0.0.1:8080/admin", "loopback_address"),
        ("http://[::1]/", "loopback_address"),
        ("http://[::ffff:127.0.0.1]/", "loopback_address"),
        ("http://[::ffff:7f00:1]/", "loopback_address"),
        ("http://169.254.169.254/latest/meta-data/", "metadata_address"),
        ("http://[fd00:ec2::254]/", "metadata_address"),
        ("http://10.0.0.5/", "private_address"),
        ("http://[fe80::1%25eth0]/", "link_local_address"),
        ("http://0.0.0.0:8000/", "unspecified_address"),
        ("http://224.0.0.1/", "multicast_address"),
        ("http://192.0.2.10/", "reserved_address"),
    ],
)
def test_internal_ip_literals_are_refused(url: str, reason: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        check_url(url, allow_private=False, require_https=False)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001", "127.0.0.1.", "1.2.3.0x4"],
)
def test_non_canonical_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        check_url(f"http://{host}/", allow_private=False, require_https=False)
    assert refused.value.reason == "bad_host"


@pytest.mark.parametrize(
    "url", ["http://exa mple.com/", "http://a..example.com/", "http://a_b!.com/"]
)
def test_hosts_that_are_not_names_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        check_url(url, allow_private=False, require_https=False)
    assert refused.value.reason == "bad_host"


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("localhost", "loopback_address"),
        ("LOCALHOST.", "loopback_address"),
        ("api.localhost", "loopback_address"),
        ("localhost.localdomain", "loopback_address"),
        ("ｌｏｃａｌｈｏｓｔ", "loopback_address"),  # fullwidth, folded by IDNA
        ("metadata.google.internal", "metadata_address"),
        ("metadata", "metadata_address"),
        ("billing.internal", "private_address"),
        ("ip-10-0-0-1.ec2.internal", "private_address"),
        ("printer.local", "private_address"),
        ("router.home.arpa", "private_address"),
        ("intranet", "private_address"),
    ],
)
def test_internal_host_names_are_refused(host: str, reason: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        check_url(f"http://{host}/hook", allow_private=False, require_https=False)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/", "http://localhost/", "http://[::1]/", "http://127.1/"]
)
def test_allow_private_lets_local_hosts_through(url: str) -> None:
    check_url(url, allow_private=True, require_https=False)


def test_allow_private_still_checks_the_scheme() -> None:
    with pytest.raises(EgressRefused) as refused:
        check_url("ftp://localhost/", allow_private=True, require_https=False)
    assert refused.value.reason == "bad_scheme"


class FakeResolver(AbstractResolver):
    """Answers each name with chosen addresses, as a rebinding DNS server would."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.answers[host]
        ]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_passes_public_addresses() -> None:
    resolver = SafeResolver(FakeResolver({"hooks.example.com": ["8.8.8.8", "2606:4700::1"]}))
    results = await resolver.resolve("hooks.example.com", 443)
    assert [r["host"] for r in results] == ["8.8.8.8", "2606:4700::1"]


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["8.8.8.8", "10.0.0.7"], "private_address"),
        (["127.0.0.1"], "loopback_address"),
        (["2606:4700::1", "fd00:ec2::254"], "metadata_address"),
        (["::ffff:169.254.169.254"], "metadata_address"),
        ([], "unresolvable"),
    ],
)
async def test_resolver_refuses_a_name_with_any_refused_address(
    addresses: list[str], reason: str
) -> None:
    resolver = SafeResolver(FakeResolver({"hooks.example.com": addresses}))
    with pytest.raises(EgressRefused) as refused:
        await resolver.resolve("hooks.example.com", 443)
    assert refused.value.reason == reason


async def test_resolver_closes_the_resolver_it_wraps() -> None:
    inner = FakeResolver({})
    await SafeResolver(inner).close()
    assert inner.closed


STREAMED: web.AppKey[dict[str, bool]] = web.AppKey("streamed", dict)
CHUNK = b"x" * 65536


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def user_agent(request: web.Request) -> web.Response:
    return web.Response(text=request.headers["User-Agent"])


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def large(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the client hangs up mid-body
        for _ in range(1024):  # 64 MiB
            await response.write(CHUNK)
        request.app[STREAMED]["completed"] = True
    return response


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app[STREAMED] = {}
    app.router.add_post("/", hello)
    app.router.add_get("/", hello)
    app.router.add_post("/user-agent", user_agent)
    app.router.add_post("/redirect", redirect)
    app.router.add_get("/large", large)
    async with serving(app) as test_server:
        yield test_server


async def test_safe_session_refuses_a_name_resolving_to_loopback(server: TestServer) -> None:
    # "localhost" passes no check_url here: the refusal comes from the resolver, and
    # reaches the caller of session.post as EgressRefused, not wrapped by aiohttp.
    async with safe_session(allow_private=False, timeout=5, user_agent="test") as session:
        with pytest.raises(EgressRefused) as refused:
            await session.post(f"http://localhost:{server.port}/", allow_redirects=False)
    assert refused.value.reason == "loopback_address"


async def test_safe_session_refuses_an_internal_ip_literal(server: TestServer) -> None:
    async with safe_session(allow_private=False, timeout=5, user_agent="test") as session:
        with pytest.raises(EgressRefused) as refused:
            await session.post(f"http://127.0.0.1:{server.port}/", allow_redirects=False)
    assert refused.value.reason == "loopback_address"


async def test_safe_session_stays_usable_after_a_refusal(server: TestServer) -> None:
    async with safe_session(allow_private=False, timeout=5, user_agent="test") as session:
        for _ in range(10):  # more than the per-host connection limit
            with pytest.raises(EgressRefused):
                await session.post(f"http://localhost:{server.port}/", allow_redirects=False)


async def test_a_name_rebound_to_loopback_after_the_url_check_is_refused(
    server: TestServer,
) -> None:
    url = check_url(
        f"http://hooks.example.com:{server.port}/", allow_private=False, require_https=False
    )
    rebinding = FakeResolver({"hooks.example.com": ["8.8.8.8", "127.0.0.1"]})
    connector = aiohttp.TCPConnector(resolver=SafeResolver(rebinding))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(EgressRefused) as refused:
            await session.post(url, allow_redirects=False)
    assert refused.value.reason == "loopback_address"


async def test_ip_literal_guard_refuses_a_redirect_to_metadata(server: TestServer) -> None:
    # A plain resolver lets the first hop reach the test server at all.
    async with aiohttp.ClientSession(middlewares=(ip_literal_guard,)) as session:
        with pytest.raises(EgressRefused) as refused:
            await session.post(
                f"http://localhost:{server.port}/redirect",
                params={"to": "http://169.254.169.254/latest/meta-data/"},
            )
    assert refused.value.reason == "metadata_address"


async def test_allow_private_session_reaches_loopback(server: TestServer) -> None:
    async with (
        safe_session(allow_private=True, timeout=5, user_agent="wesendall-test/1") as session,
        session.post(f"http://localhost:{server.port}/user-agent", allow_redirects=False) as r,
    ):
        assert r.status == 200
        assert await r.text() == "wesendall-test/1"


async def test_read_capped_stops_at_the_limit(server: TestServer) -> None:
    async with (
        safe_session(allow_private=True, timeout=10, user_agent="test") as session,
        session.get(f"http://127.0.0.1:{server.port}/large") as response,
    ):
        body = await read_capped(response, 100_000)
        assert response.closed  # by read_capped, before the block would release it
    assert body == b"x" * 100_000
    assert not server.app[STREAMED].get("completed")


async def test_read_capped_returns_a_short_body_whole(server: TestServer) -> None:
    async with (
        safe_session(allow_private=True, timeout=5, user_agent="test") as session,
        session.get(f"http://127.0.0.1:{server.port}/") as response,
    ):
        assert await read_capped(response, 1000) == b"ok"
