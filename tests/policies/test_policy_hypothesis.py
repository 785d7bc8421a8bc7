"""Generated rules: a rule is flagged iff it really exposes a guarded TCP port to a public source,
one source alone or its sources together.

Sources are drawn with their label known by construction (a /12 inside a fully routable /8 is
public, a /20 there is not, any subnet of 10.0.0.0/8 is private...), so the oracle does not reuse
the pack's arithmetic: it counts the union of the sources it knows to be routable by merging their
address intervals itself. Each rule is then spelled in one of the four resource forms, with any of
the spellings providers accept.
"""

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.policies.kit import (
    EXPOSURE_POLICIES,
    INGRESS_RULE,
    SG,
    firewall,
    hrule,
    ingress_rule,
    node,
    sg,
    sg_rule,
    stack,
    violations,
)

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
# Below the threshold alone; `routable` says whether every address counts towards the union.
ROUTABLE_SMALL = st.one_of(
    st.builds(_v4, OCTET, REST, st.integers(17, 32)),
    st.builds(_v6, st.just("2a00::/8"), V6_BITS, st.integers(33, 128)),
)
NOT_ROUTABLE = st.one_of(
    st.builds(_v4, st.just(10), REST, st.integers(8, 32)),
    st.builds(lambda rest, p: _v4(192, (168 << 16) | (rest & 0xFFFF), p), REST, st.integers(16, 32)),
    st.builds(lambda rest, p: _v4(224 + (rest >> 19) % 32, rest, p), REST, st.integers(3, 32)),  # multicast, reserved
    st.builds(_v6, st.just("fc00::/7"), V6_BITS, st.integers(7, 128)),
)
# Sources that only add up: /17s to /19s of one routable /8, several of them together sometimes public.
ADDING_UP = st.builds(lambda octet, rest, p: _v4(octet, rest & 0x7F0000, p), OCTET, REST, st.integers(17, 19))
SOURCES = st.lists(
    st.one_of(
        PUBLIC.map(lambda s: (s, "public")),
        ROUTABLE_SMALL.map(lambda s: (s, "routable")),
        NOT_ROUTABLE.map(lambda s: (s, "reserved")),
    ),
    min_size=1,
    max_size=3,
)
MANY_SOURCES = st.lists(ADDING_UP.map(lambda s: (s, "routable")), min_size=1, max_size=40)


def public_together(labelled) -> bool:
    """The oracle: any public source, or routable sources whose merged intervals reach a /16's
    (IPv4) or a /32's (IPv6) worth of addresses."""
    if any(label == "public" for _, label in labelled):
        return True
    for version, threshold in ((4, 2**16), (6, 2**96)):
        spans = sorted(
            (int(n.network_address), int(n.broadcast_address))
            for n in (ipaddress.ip_network(s) for s, label in labelled if label == "routable")
            if n.version == version
        )
        total, end = 0, -1
        for lo, hi in spans:
            total += max(0, hi - max(lo, end + 1) + 1)
            end = max(end, hi)
        if total >= threshold:
            return True
    return False


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
def rules(draw, sources=SOURCES):
    """(form, resource args list, set of policies that must flag it)."""
    form = draw(st.sampled_from(["inline", "group-rule", "vpc-rule", "hcloud"]))
    spellings = HCLOUD_SPELLINGS if form == "hcloud" else AWS_SPELLINGS
    kind = draw(st.sampled_from(sorted(spellings)))
    protocol = draw(st.sampled_from(spellings[kind]))
    lo, hi = draw(RANGE)
    labelled = draw(sources)
    sources = [s for s, _ in labelled]

    covered = (0, 65535) if kind == "all" else (lo, hi)
    # A SecurityGroupIngressRule holds one source: alone, each resource is judged on its own source;
    # the stack policy adds up the resources of one group (see the test below).
    alone = form == "vpc-rule"
    public = public_together([x for x in labelled if x[1] == "public"] if alone else labelled)
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
        return form, [firewall(hrule(port, *sources, protocol=protocol))], expected
    if kind == "all":
        lo_text, hi_text = 0, 0
    else:
        lo_text, hi_text = draw(aws_number(lo)), draw(aws_number(hi))
    v4 = [s for s in sources if ":" not in s]
    v6 = [s for s in sources if ":" in s]
    if form == "inline":
        entry = {"protocol": protocol, "fromPort": lo_text, "toPort": hi_text, "cidrBlocks": v4, "ipv6CidrBlocks": v6}
        return form, [sg(entry)], expected
    if form == "group-rule":
        return (
            form,
            [sg_rule(protocol=protocol, fromPort=lo_text, toPort=hi_text, cidrBlocks=v4, ipv6CidrBlocks=v6)],
            expected,
        )
    return (
        form,
        [
            ingress_rule(
                ipProtocol=protocol, fromPort=lo_text, toPort=hi_text, **{"cidrIpv6" if ":" in s else "cidrIpv4": s}
            )
            for s in sources
        ],
        expected,
    )


@settings(max_examples=400, deadline=None)
@given(rules())
def test_flagged_iff_a_guarded_port_is_exposed_to_a_public_source(case):
    _form, resources, expected = case
    flagged = {policy for policy in EXPOSURE_POLICIES if any(violations(policy, r) for r in resources)}
    assert flagged == expected


@settings(max_examples=150, deadline=None)
@given(rules(sources=MANY_SOURCES))
def test_many_small_sources_are_flagged_iff_they_add_up(case):
    _form, resources, expected = case
    flagged = {policy for policy in EXPOSURE_POLICIES if any(violations(policy, r) for r in resources)}
    assert flagged == expected


@settings(max_examples=150, deadline=None)
@given(MANY_SOURCES, st.sampled_from([22, 5000, 8000, 9101]))
def test_rule_resources_of_one_group_add_up_in_the_stack_policy(labelled, port):
    """The same sources as one SecurityGroupIngressRule each, all in one group: only the stack shows the set."""
    rules_ = [
        node(INGRESS_RULE, f"r{i}", securityGroupId="sg-1", ipProtocol="tcp", fromPort=port, toPort=port, cidrIpv4=s)
        for i, (s, _) in enumerate(labelled)
    ]
    found = violations("no-public-guarded-ports", stack(node(SG, "sg", id="sg-1"), *rules_))
    assert bool(found) == public_together(labelled)
    if found:
        assert found[0].startswith(f"sg: {len(labelled)} sources, each below the public threshold, together open")
