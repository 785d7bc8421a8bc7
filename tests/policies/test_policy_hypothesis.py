"""Generated rules: a rule is flagged iff it really exposes a guarded TCP port to a public source.

Sources are drawn with their label known by construction (a /12 inside a fully routable /8 is
public, a /20 there is not, any subnet of 10.0.0.0/8 is private...), so the oracle does not reuse
the pack's arithmetic. Each rule is then spelled in one of the four resource forms, with any of
the spellings providers accept.
"""

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.policies.kit import EXPOSURE_POLICIES, firewall, hrule, ingress_rule, sg, sg_rule, violations

GUARDED = {
    "no-public-kumomta-http": [(8000, 8000)],
    "no-public-socks-proxy": [(5000, 5000)],
    "no-public-metrics": [(9090, 9101), (9464, 9464)],
    "no-public-ssh": [(22, 22)],
}
ROUTABLE_OCTETS = [n for n in range(1, 100) if n != 10]  # each n.0.0.0/8 is globally routable throughout


def _v4(first_octet: int, rest: int, prefix: int) -> str:
    return str(ipaddress.ip_network(((first_octet << 24) | rest, prefix), strict=False))


def _v6(base: str, bits: int, prefix: int) -> str:
    net = ipaddress.ip_network(base)
    return str(ipaddress.ip_network((int(net.network_address) | bits, prefix), strict=False))


OCTET = st.sampled_from(ROUTABLE_OCTETS)
REST = st.integers(0, 2**24 - 1)
V6_BITS = st.integers(0, 2**120 - 1)

PUBLIC = st.one_of(
    st.sampled_from(["0.0.0.0/0", "::/0", "2000::/3", "0.0.0.0/1", "128.0.0.0/1"]),
    st.builds(_v4, OCTET, REST, st.integers(8, 16)),
    # wider than a /8 but not inside 224.0.0.0/3: millions of routable addresses whatever it spans
    st.builds(lambda base, p: _v4(base, 0, p), st.integers(0, 223), st.integers(1, 7)),
    st.builds(_v6, st.just("2a00::/8"), V6_BITS, st.integers(8, 32)),
)
NOT_PUBLIC = st.one_of(
    st.builds(_v4, OCTET, REST, st.integers(17, 32)),
    st.builds(_v4, st.just(10), REST, st.integers(8, 32)),
    st.builds(lambda rest, p: _v4(192, (168 << 16) | (rest & 0xFFFF), p), REST, st.integers(16, 32)),
    st.builds(lambda rest, p: _v4(224 + (rest >> 19) % 32, rest, p), REST, st.integers(3, 32)),  # multicast, reserved
    st.builds(_v6, st.just("2a00::/8"), V6_BITS, st.integers(33, 128)),
    st.builds(_v6, st.just("fc00::/7"), V6_BITS, st.integers(7, 128)),
)
SOURCES = st.lists(
    st.one_of(PUBLIC.map(lambda s: (s, True)), NOT_PUBLIC.map(lambda s: (s, False))), min_size=1, max_size=3
)

NEAR = [0, 22, 80, 443, 5000, 8000, 9090, 9101, 9464, 65535]
PORT = st.one_of(
    st.sampled_from(NEAR).flatmap(lambda p: st.integers(max(0, p - 2), min(65535, p + 2))), st.integers(0, 65535)
)
RANGE = st.tuples(PORT, PORT).map(sorted).map(tuple)

AWS_SPELLINGS = {
    "tcp": ["tcp", "TCP", "Tcp", " tcp", "6", 6, 6.0],
    "udp": ["udp", "UDP", "17", 17, 17.0],
    "icmp": ["icmp", "1", 1],
    "all": ["-1", -1, -1.0, "all", "ALL"],
    "other": ["132", 47, "50"],
}
HCLOUD_SPELLINGS = {"tcp": ["tcp", "TCP"], "udp": ["udp", "UDP"], "icmp": ["icmp"], "other": ["gre", "esp"]}


@st.composite
def aws_number(draw, value: int):
    return draw(st.sampled_from([value, float(value), str(value)]))


@st.composite
def rules(draw):
    """(resource args list, set of policies that must flag it)."""
    form = draw(st.sampled_from(["inline", "group-rule", "vpc-rule", "hcloud"]))
    spellings = HCLOUD_SPELLINGS if form == "hcloud" else AWS_SPELLINGS
    kind = draw(st.sampled_from(sorted(spellings)))
    protocol = draw(st.sampled_from(spellings[kind]))
    lo, hi = draw(RANGE)
    labelled = draw(SOURCES)
    sources = [s for s, _ in labelled]

    covered = (0, 65535) if kind == "all" else (lo, hi)
    public = any(is_public for _, is_public in labelled)
    expected = {
        policy
        for policy, ranges in GUARDED.items()
        if kind in ("tcp", "all") and public and any(a <= covered[1] and covered[0] <= b for a, b in ranges)
    }

    if form == "hcloud":
        if kind in ("tcp", "udp"):
            full = (lo, hi) == (0, 65535)
            port = draw(st.sampled_from(["any", "0-65535"])) if full else str(lo) if lo == hi else f"{lo}-{hi}"
        else:
            port = None
        return [firewall(hrule(port, *sources, protocol=protocol))], expected
    if kind == "all":
        lo_text, hi_text = 0, 0
    else:
        lo_text, hi_text = draw(aws_number(lo)), draw(aws_number(hi))
    v4 = [s for s in sources if ":" not in s]
    v6 = [s for s in sources if ":" in s]
    if form == "inline":
        entry = {"protocol": protocol, "fromPort": lo_text, "toPort": hi_text, "cidrBlocks": v4, "ipv6CidrBlocks": v6}
        return [sg(entry)], expected
    if form == "group-rule":
        return [
            sg_rule(protocol=protocol, fromPort=lo_text, toPort=hi_text, cidrBlocks=v4, ipv6CidrBlocks=v6)
        ], expected
    return [
        ingress_rule(
            ipProtocol=protocol, fromPort=lo_text, toPort=hi_text, **{"cidrIpv6" if ":" in s else "cidrIpv4": s}
        )
        for s in sources
    ], expected


@settings(max_examples=400, deadline=None)
@given(rules())
def test_flagged_iff_a_guarded_port_is_exposed_to_a_public_source(case):
    resources, expected = case
    flagged = {policy for policy in EXPOSURE_POLICIES if any(violations(policy, r) for r in resources)}
    assert flagged == expected
