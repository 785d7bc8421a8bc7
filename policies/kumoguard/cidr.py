"""What counts as "the internet" and what counts as "private": the one place the threshold lives.

A source is public when it takes in a large slice of globally routable space, not only when it
is spelled `0.0.0.0/0`. Counting the globally routable addresses a source covers (rather than
reading its prefix length) keeps `10.0.0.0/8` private and `0.0.0.0/1` public alike.

Sources add up: what one rule, one security group or one firewall admits on a port is counted as
the union of its sources (overlaps once, per address family), so 64 public /17s are as public as
one /11. `is_public_together` is that rule over CIDR strings, for anything that must agree with
the pack (the program's own settings check is tested against it).
"""

import functools
import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A source is public once it covers at least this many globally routable addresses: an IPv4 /16's
# worth (65,536 hosts; wider than any single site an operator would allowlist) or an IPv6 /32's
# worth (a whole ISP's allocation).
PUBLIC_PREFIX = {4: 16, 6: 32}

# Blocks that are not globally routable (IANA special-purpose registries), disjoint per family.
_NOT_GLOBAL = {
    4: (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ),
    # Everything outside 2000::/3 (global unicast), plus the non-global blocks inside it.
    6: ("::/3", "4000::/2", "8000::/1", "2001::/23", "2001:db8::/32", "3fff::/20"),
}

# Private address space: what a host's private network or VPC can use (RFC 1918, RFC 6598, ULA,
# link-local). A source inside one of these never reaches the host from the internet.
_PRIVATE = {
    4: ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"),
    6: ("fc00::/7", "fe80::/10", "::1/128"),
}

_NOT_GLOBAL_NETS = {v: tuple(ipaddress.ip_network(n) for n in nets) for v, nets in _NOT_GLOBAL.items()}
_PRIVATE_NETS = {v: tuple(ipaddress.ip_network(n) for n in nets) for v, nets in _PRIVATE.items()}


@functools.lru_cache(maxsize=4096)  # the same few sources recur on every rule of a stack
def parse(text: str) -> Network | None:
    """A CIDR or bare address as providers accept it (host bits allowed), or None if it is neither."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except (ValueError, AttributeError):
        return None


def global_addresses(net: Network) -> int:
    """How many globally routable addresses `net` covers."""
    reserved = 0
    for block in _NOT_GLOBAL_NETS[net.version]:
        if net.subnet_of(block):
            return 0
        if block.subnet_of(net):
            reserved += block.num_addresses
    return net.num_addresses - reserved


@functools.lru_cache(maxsize=4096)
def is_public(net: Network) -> bool:
    return global_addresses(net) >= threshold(net.version)


def is_private(net: Network) -> bool:
    """Entirely inside private address space."""
    return any(net.subnet_of(block) for block in _PRIVATE_NETS[net.version])


def threshold(version: int) -> int:
    """The number of globally routable addresses from which a source, or a set of them, is public."""
    return 2 ** ((32 if version == 4 else 128) - PUBLIC_PREFIX[version])


def union_addresses(nets: Iterable[Network]) -> dict[int, int]:
    """Globally routable addresses in the union of `nets`, per IP version (overlaps counted once)."""
    by_version: dict[int, list[Network]] = {4: [], 6: []}
    for net in nets:
        # Zone IDs (fe80::1%eth0) name an interface, not addresses: drop them before merging.
        by_version[net.version].append(type(net)((int(net.network_address), net.prefixlen)))
    return {v: sum(map(global_addresses, ipaddress.collapse_addresses(ns))) for v, ns in by_version.items()}


def union_is_public(nets: Iterable[Network]) -> bool:
    """Whether the union of `nets` reaches the public threshold in either IP version."""
    return any(count >= threshold(v) for v, count in union_addresses(nets).items())


def is_public_together(cidrs: Iterable[str]) -> bool:
    """Whether these sources, taken together, are public: the union rule the pack applies per rule,
    security group and firewall. CIDRs or bare addresses, host bits allowed as providers allow them;
    anything else is a ValueError (the pack itself treats an unreadable source as public)."""
    nets = []
    for text in cidrs:
        net = parse(text)
        if net is None:
            raise ValueError(f"{text!r} is not an IP network")
        nets.append(net)
    return union_is_public(nets)
