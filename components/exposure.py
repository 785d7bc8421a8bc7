"""When a set of sources is "the internet": settings refuse it on a guarded port, before the pack has to.

The policy pack (policies/kumoguard/cidr.py) owns this definition and the program may not import it, so
it is written again here from the same sources and tests/test_exposure.py holds the two to the same
answers. Sources add up: a port opened to many networks that are each small but together cover as much
globally routable space as an IPv4 /16 (or an IPv6 /32) is opened to the internet.
"""

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Public from an IPv4 /16's worth of globally routable addresses, or an IPv6 /32's worth.
THRESHOLD = {4: 2**16, 6: 2**96}

# Address blocks that are not globally routable: the IANA IPv4 and IPv6 Special-Purpose Address
# Registries (RFC 6890), and on IPv6 everything outside 2000::/3, the global unicast space.
NOT_GLOBAL = tuple(
    ipaddress.ip_network(block)
    for block in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/4", "240.0.0.0/4",
        "::/3", "4000::/2", "8000::/1", "2001::/23", "2001:db8::/32", "3fff::/20",
    )
)  # fmt: skip


def routable(nets: Iterable[Network]) -> dict[int, int]:
    """How many globally routable addresses the union of `nets` covers, per IP version."""
    out = {4: 0, 6: 0}
    for version in (4, 6):
        union = list(ipaddress.collapse_addresses(n for n in nets if n.version == version))
        for net in union:
            out[version] += net.num_addresses
            for block in NOT_GLOBAL:
                if block.version == version and block.overlaps(net):
                    inside = block if block.subnet_of(net) else net
                    out[version] -= inside.num_addresses
    return out


def public(nets: Iterable[Network]) -> bool:
    """Whether these sources, taken together, reach the internet (the pack's union rule)."""
    nets = list(nets)
    return any(count >= THRESHOLD[version] for version, count in routable(nets).items())
