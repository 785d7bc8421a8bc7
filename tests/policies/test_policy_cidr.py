"""Where "public" starts: a large slice of globally routable space, however the CIDR is spelled."""

import ipaddress

import pytest
from kumoguard import cidr


@pytest.mark.parametrize(
    "source",
    [
        "0.0.0.0/0",
        "0.0.0.0/1",
        "128.0.0.0/1",
        "4.0.0.0/6",
        "8.0.0.0/8",
        "100.0.0.0/16",  # exactly the threshold
        "0.0.0.0/4",  # mostly reserved blocks, still millions of routable addresses
        "::/0",
        "2000::/3",
        "2a00::/12",
        "2a01:4f8::/32",  # exactly the threshold
    ],
)
def test_public(source):
    assert cidr.is_public(cidr.parse(source))


@pytest.mark.parametrize(
    "source",
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/3",  # multicast and reserved: nothing routable as a source
        "100.0.0.0/17",  # just under the threshold
        "203.0.113.10/32",
        "8.8.8.8",  # a bare address is one host
        "fc00::/7",
        "fe80::/10",
        "2001:db8::/32",  # documentation
        "2a01:4f8::/33",
        "2a01:4f8::1/128",
    ],
)
def test_not_public(source):
    assert not cidr.is_public(cidr.parse(source))


def test_counting_subtracts_reserved_blocks_inside_a_wide_source():
    assert cidr.global_addresses(cidr.parse("10.0.0.0/7")) == 2**24  # 11.0.0.0/8 only
    assert cidr.global_addresses(cidr.parse("0.0.0.0/0")) < 2**32


def test_host_bits_are_allowed_as_providers_allow_them():
    assert cidr.parse("10.1.2.3/8") == cidr.parse("10.0.0.0/8")


@pytest.mark.parametrize("text", ["", "any", "10.0.0.0/33", "::/129", "sg-123"])
def test_unparseable_sources_are_none(text):
    assert cidr.parse(text) is None


@pytest.mark.parametrize("source", ["10.42.200.0/24", "192.168.1.5/32", "fd00:1::/64", "100.64.1.0/24"])
def test_private(source):
    assert cidr.is_private(cidr.parse(source))


@pytest.mark.parametrize("source", ["203.0.113.10/32", "0.0.0.0/0", "9.0.0.0/8", "2a01:4f8::1/128"])
def test_not_private(source):
    assert not cidr.is_private(cidr.parse(source))


def subnets(cidr_text: str, prefix: int) -> list[str]:
    return [str(n) for n in ipaddress.ip_network(cidr_text).subnets(new_prefix=prefix)]


def all_but_one(cidr_text: str) -> list[str]:
    net = ipaddress.ip_network(cidr_text)
    return [str(n) for n in net.address_exclude(ipaddress.ip_network((int(net.broadcast_address), 32)))]


@pytest.mark.parametrize(
    ("sources", "public"),
    [
        (subnets("20.0.0.0/11", 17), True),  # 64 public /17s: 2,097,152 addresses
        (subnets("20.0.0.0/11", 17)[:2], True),  # two /17s are a /16's worth
        (subnets("20.0.0.0/11", 17)[:1], False),
        (subnets("20.0.0.0/11", 17)[:1] * 64, False),  # the same /17 64 times is still one /17
        (["20.0.0.0/17", "20.0.0.0/18", "20.0.64.0/18"], False),  # overlaps count once
        (["10.0.0.0/17", "10.0.128.0/17"], False),  # private space never adds up to public
        (["100.0.0.0/17", "100.64.0.0/17"], False),  # the second one is in 100.64.0.0/10 (shared space)
        (subnets("2a01::/31", 33), True),  # two IPv6 /33s are a /32's worth
        (["2a01::/33", "20.0.0.0/17"], False),  # families are counted apart
        ([*all_but_one("20.0.0.0/16"), "2a01::/33"], False),  # one address short of a /16
        (["8.8.8.8", "8.8.8.9/31"], False),
        ([], False),
    ],
)
def test_sources_add_up_to_public_counted_once_per_family(sources, public):
    assert cidr.is_public_together(sources) is public


def test_the_union_rule_agrees_with_the_single_source_rule():
    for source in ["0.0.0.0/1", "100.0.0.0/16", "10.0.0.0/8", "100.0.0.0/17", "::/0", "2a01:4f8::/33"]:
        assert cidr.is_public_together([source]) == cidr.is_public(cidr.parse(source))


def test_the_union_count_names_each_family():
    assert cidr.union_addresses([cidr.parse("20.0.0.0/17"), cidr.parse("20.0.0.0/16")]) == {4: 65536, 6: 0}
    assert cidr.union_addresses([cidr.parse("fe80::1%eth0/128")]) == {4: 0, 6: 0}  # a zone ID names no address


def test_unreadable_sources_are_an_error_for_the_pure_function():
    with pytest.raises(ValueError, match="'everyone' is not an IP network"):
        cidr.is_public_together(["10.0.0.0/8", "everyone"])
