"""Which address a request comes from, when it reaches us through trusted proxies.

Behind nginx every connection's peer is nginx, so without this the per-client stream
limit (GATEWAY_MAX_SUBSCRIBERS_PER_CLIENT) would be one limit shared by every client,
and the access log would name nginx on every line. With GATEWAY_TRUSTED_PROXIES set,
a request whose peer is a trusted proxy is credited to the address that proxy says it
came from: the ``for=`` hops of ``Forwarded`` (RFC 7239) when the request has that
header, else ``X-Forwarded-For``. The hops are walked from the right, the way nginx's
``real_ip_recursive on`` walks them: each proxy appends the peer it saw, so the
rightmost hop that is not itself a trusted proxy is the client, and anything to its
left is whatever the client claimed, which is never believed. A hop that is not an
address (``unknown``, an obfuscated ``_name``) stops the walk at the last trusted
address. A peer that is not trusted is the client whatever its headers say.

Pure but for :func:`client_of`, which reads the request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(value: str) -> tuple[Network, ...]:
    """``10.0.0.0/8, 127.0.0.1, ::1`` -> networks (an address is a network of one)."""
    networks = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an address or a CIDR like 10.0.0.0/8 or fd00::/8") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    """An address from a hop or a peer: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:443``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_address(peer: str | None, hops: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address, given the connection's ``peer`` and the proxies' ``hops``
    (leftmost first, as the headers list them)."""
    peer_address = _address(peer) if peer else None
    if peer_address is None or not trusted or not _trusted(peer_address, trusted):
        return peer or "unknown"
    nearest = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        if not _trusted(address, trusted):
            return str(address)
        nearest = address
    return str(nearest)


def forwarded_hops(request: web.BaseRequest) -> list[str]:
    """The ``for=`` hops of ``Forwarded`` if the request has one, else ``X-Forwarded-For``'s."""
    if "Forwarded" in request.headers:
        return [str(element.get("for", "")) for element in request.forwarded]
    return [hop for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]


def client_of(request: web.BaseRequest, trusted: Sequence[Network]) -> str:
    """The address the stream limit and the access log credit ``request`` to."""
    if not trusted:
        return request.remote or "unknown"
    return client_address(request.remote, forwarded_hops(request), trusted)
