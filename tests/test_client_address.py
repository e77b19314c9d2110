"""Which address a request is credited to behind trusted proxies: the pure walk."""

from __future__ import annotations

import pytest

from gateway.client_address import client_address, parse_networks

PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "hops", "trusted", "expected"),
    [
        # not behind a trusted proxy: the headers are the client's claim, never believed
        ("203.0.113.9", ["198.51.100.1"], PROXIES, "203.0.113.9"),
        ("127.0.0.1", ["198.51.100.1"], (), "127.0.0.1"),
        # one trusted proxy: the hop it appended is the client
        ("127.0.0.1", ["198.51.100.1"], PROXIES, "198.51.100.1"),
        # what the client put to the left of the proxy's hop is ignored
        ("127.0.0.1", ["1.1.1.1", "198.51.100.1"], PROXIES, "198.51.100.1"),
        # a chain of trusted proxies is walked through, from the right
        ("127.0.0.1", ["198.51.100.1", "10.1.2.3", "10.9.9.9"], PROXIES, "198.51.100.1"),
        # every hop trusted: the leftmost of them
        ("127.0.0.1", ["10.0.0.5", "10.0.0.6"], PROXIES, "10.0.0.5"),
        # a trusted peer that forwarded nothing is the client itself
        ("127.0.0.1", [], PROXIES, "127.0.0.1"),
        # a hop that is no address stops the walk at the last trusted address
        ("127.0.0.1", ["198.51.100.1", "unknown"], PROXIES, "127.0.0.1"),
        ("127.0.0.1", ["198.51.100.1", "_hidden", "10.0.0.7"], PROXIES, "10.0.0.7"),
        ("127.0.0.1", [""], PROXIES, "127.0.0.1"),
        # ports, brackets, quotes and spaces as Forwarded and X-Forwarded-For write them
        ("127.0.0.1", [" 198.51.100.1:4711 "], PROXIES, "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::1]:443"], PROXIES, "2001:db8::1"),
        ("127.0.0.1", ['"[2001:db8::2]"'], PROXIES, "2001:db8::2"),
        ("127.0.0.1", ["2001:db8::3"], PROXIES, "2001:db8::3"),
        # IPv6 proxies, and an IPv4 peer seen through an IPv6 socket
        ("fd00::1", ["198.51.100.1"], PROXIES, "198.51.100.1"),
        ("::ffff:127.0.0.1", ["198.51.100.1"], PROXIES, "198.51.100.1"),
        ("::ffff:10.0.0.1", ["::ffff:10.0.0.2"], PROXIES, "10.0.0.2"),
        # a peer aiohttp could not name
        (None, ["198.51.100.1"], PROXIES, "unknown"),
    ],
)
def test_the_rightmost_hop_that_is_not_a_trusted_proxy_is_the_client(
    peer: str | None, hops: list[str], trusted: tuple[object, ...], expected: str
) -> None:
    assert client_address(peer, hops, trusted) == expected  # type: ignore[arg-type]


def test_trusted_proxies_parse_addresses_and_cidrs_and_refuse_names() -> None:
    assert [str(n) for n in parse_networks(" 10.0.0.0/8 ,127.0.0.1,, ::1 ")] == [
        "10.0.0.0/8",
        "127.0.0.1/32",
        "::1/128",
    ]
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="'nginx' is not an address or a CIDR"):
        parse_networks("10.0.0.0/8,nginx")
