"""Outbound HTTP to customer webhook URLs that never reaches our own network.

Three layers, because aiohttp takes different paths for names and for IP literals:
`check_url` judges a URL before delivery; `SafeResolver` judges every address a name
resolves to, and aiohttp connects only to those, so a name rebound to an internal address
after `check_url` is still refused; `ip_literal_guard` judges IP-literal hosts, which
aiohttp connects to without asking the resolver, on every hop including redirects.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = IPv4Address | IPv6Address

# Exact addresses of instance metadata and credential services: refused with their own
# reason so an attempt on them stands out in the logs.
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer: a public-looking address that is the host
        "fd00:ec2::254",  # AWS over IPv6
    )
)

# IANA special-purpose address registries (RFC 6890 and successors); first match wins.
_RULES = tuple(
    (ipaddress.ip_network(net), reason)
    for reason, nets in (
        ("unspecified_address", "0.0.0.0/32 ::/128"),
        ("loopback_address", "127.0.0.0/8 ::1/128"),
        # 100.64/10 is carrier-grade NAT, often the cloud provider's own network;
        # fc00::/7 is unique-local, fec0::/10 the deprecated site-local.
        ("private_address", "10.0.0.0/8 100.64.0.0/10 172.16.0.0/12 192.168.0.0/16"),
        ("private_address", "fc00::/7 fec0::/10"),
        ("link_local_address", "169.254.0.0/16 fe80::/10"),
        ("multicast_address", "224.0.0.0/4 ff00::/8"),
        # "This network" (Linux connects 0/8 to the host itself), IETF protocol assignments,
        # the deprecated 6to4 relay, benchmarking, and 240/4 with the broadcast address.
        ("reserved_address", "0.0.0.0/8 192.0.0.0/24 192.88.99.0/24 198.18.0.0/15 240.0.0.0/4"),
        ("reserved_address", "2001:2::/48"),  # benchmarking
        # Documentation (RFC 5737, RFC 3849, RFC 9637).
        ("reserved_address", "192.0.2.0/24 198.51.100.0/24 203.0.113.0/24"),
        ("reserved_address", "2001:db8::/32 3fff::/20"),
    )
    for net in nets.split()
)
_V4_COMPATIBLE = IPv6Network("::/96")  # deprecated, RFC 4291 §2.5.5.1
_NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_GLOBAL_UNICAST = IPv6Network("2000::/3")

_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# The WHATWG URL parser reads a host whose last label is a number as IPv4 ("127.1",
# "0x7f.1", "2130706433"), and so does inet_aton behind getaddrinfo.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal"})
_PRIVATE_SUFFIXES = ("internal", "local", "localdomain", "home.arpa")


class EgressRefused(Exception):
    """An outbound request refused by policy; `reason` is a stable short code.

    Deliberately not an OSError: aiohttp wraps an OSError from the resolver in
    `ClientConnectorDNSError`, but lets any other exception from the resolver or a client
    middleware reach the caller of `session.post` unchanged. So one `except EgressRefused`
    covers `check_url`, `SafeResolver` and `ip_literal_guard`.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def address_refusal(ip: IPAddress) -> str | None:
    """The reason code an address is refused for, or None when it is public."""
    if isinstance(ip, IPv6Address) and ip.scope_id:
        ip = IPv6Address(int(ip))  # a zone (fe80::1%eth0) changes nothing about the range
    if ip in _METADATA:
        return "metadata_address"
    # `in` is False across IP versions, so one table serves both.
    if (reason := next((r for net, r in _RULES if ip in net), None)) is not None:
        return reason
    if isinstance(ip, IPv4Address):
        return None
    embedded = _embedded_v4(ip)
    for v4 in embedded:
        if (reason := address_refusal(v4)) is not None:
            return reason
    if ip in _V4_COMPATIBLE or (not embedded and ip not in _GLOBAL_UNICAST):
        return "reserved_address"
    return None


def _embedded_v4(ip: IPv6Address) -> tuple[IPv4Address, ...]:
    """The IPv4 addresses that packets to this IPv6 address are in effect delivered to."""
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo  # (server, client)
    if ip in _NAT64 or ip in _V4_COMPATIBLE:
        return (IPv4Address(int(ip) & 0xFFFF_FFFF),)
    return ()


def _name_refusal(name: str) -> str | None:
    """The reason code a host name is refused for without resolving it, or None."""
    name = name.rstrip(".")

    def under(suffix: str) -> bool:
        return name == suffix or name.endswith("." + suffix)

    if under("localhost") or name == "localhost.localdomain":
        return "loopback_address"
    if name in _METADATA_NAMES:
        return "metadata_address"
    # A single-label name is completed by the resolver's search domains: an internal name.
    if "." not in name or any(under(suffix) for suffix in _PRIVATE_SUFFIXES):
        return "private_address"
    return None


def check_url(url: str, *, allow_private: bool, require_https: bool) -> yarl.URL:
    """Parse a webhook URL and judge it statically; the URL without its fragment."""
    try:
        parsed = yarl.URL(url)
    except ValueError as exc:
        # yarl names the port in its message when the port is what it could not parse.
        raise EgressRefused("bad_port" if "port" in str(exc).lower() else "bad_url") from exc
    if parsed.scheme not in (("https",) if require_https else ("http", "https")):
        raise EgressRefused("bad_scheme", parsed.scheme or "none")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise EgressRefused("credentials_in_url")
    host = parsed.raw_host  # ASCII: IDNA-encoded and lower-cased by yarl
    if not host:
        raise EgressRefused("no_host")
    if parsed.explicit_port is not None and not 1 <= parsed.explicit_port <= 65535:
        raise EgressRefused("bad_port", str(parsed.explicit_port))
    try:
        ip: IPAddress | None = ipaddress.ip_address(parsed.host or "")  # %25 zone decoded
    except ValueError:
        ip = None
    if ip is not None:
        if not allow_private and (reason := address_refusal(ip)) is not None:
            raise EgressRefused(reason, host)
    elif _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        if not allow_private:
            raise EgressRefused("bad_host", host)
    elif len(host) > 254 or not all(map(_LABEL.fullmatch, host.removesuffix(".").split("."))):
        raise EgressRefused("bad_host", host)
    elif not allow_private and (reason := _name_refusal(host)) is not None:
        raise EgressRefused(reason, host)
    return parsed.with_fragment(None)


class SafeResolver(AbstractResolver):
    """A resolver that refuses a name when any address it resolves to is refused.

    aiohttp never asks the resolver about IP-literal hosts: call `check_url` before
    each delivery, and `ip_literal_guard` covers them on every hop.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Every address of `host`, or EgressRefused if any of them is refused."""
        results = await self._inner.resolve(host, port, family)
        if not results:
            raise EgressRefused("unresolvable", host)
        for result in results:
            # All or nothing: a name that points inside our network is wrong even when it
            # also points outside, and quietly dropping addresses would hide that.
            try:
                ip = ipaddress.ip_address(result["host"])
            except ValueError:
                raise EgressRefused("unresolvable", f"{host} -> {result['host']}") from None
            if (reason := address_refusal(ip)) is not None:
                raise EgressRefused(reason, f"{host} -> {ip}")
        return results

    async def close(self) -> None:
        await self._inner.close()


async def ip_literal_guard(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Client middleware refusing IP-literal hosts that `address_refusal` refuses."""
    host = request.url.host or ""
    try:
        reason = address_refusal(ipaddress.ip_address(host))
    except ValueError:
        reason = None  # a name: the resolver judges it
    if reason is not None:
        raise EgressRefused(reason, host)
    return await handler(request)


def safe_session(
    *,
    allow_private: bool,
    timeout: float,
    max_connections: int = 256,
    user_agent: str,
) -> aiohttp.ClientSession:
    """A session for webhook deliveries; call it inside the event loop.

    Pass `allow_redirects=False` on every request and no per-request `middlewares`
    (they replace the session's guard). A refused request raises EgressRefused from
    `session.post`. `allow_private` is for dev and test only. `max_connections` should
    cover every attempt the caller allows in flight.
    """
    connector = aiohttp.TCPConnector(
        resolver=None if allow_private else SafeResolver(),
        # No per-host limit: many customers' endpoints may share a host (an integration
        # platform, say), and the dispatcher caps each endpoint itself; a shared host
        # limit would let one customer's hanging endpoint hold up another's deliveries.
        limit=max_connections,
        limit_per_host=0,
        # Cached results were judged when they were resolved, and aiohttp connects only
        # to those, so caching cannot reopen the rebinding gap.
        ttl_dns_cache=10,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers={"User-Agent": user_agent, "Accept-Encoding": "identity"},
        # A proxy from the environment would make the resolver judge the proxy, not the
        # customer's host.
        trust_env=False,
        # We keep only a capped excerpt of a response, and a compressed body could
        # inflate far past the cap before `read_capped` sees it.
        auto_decompress=False,
        middlewares=() if allow_private else (ip_literal_guard,),
    )


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body; the connection is closed if more remains."""
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = await response.content.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    if not response.content.at_eof():
        # Stop the transfer now, not when the caller leaves its `async with`: the rest
        # of the body is never wanted, and the connection cannot be reused mid-body.
        response.close()
    return b"".join(chunks)
