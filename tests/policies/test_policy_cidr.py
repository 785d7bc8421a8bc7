"""Where "public" starts: a large slice of globally routable space, however the CIDR is spelled."""

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
