"""The exposure table: every way of writing "this guarded port, from the internet", on every
resource type, is caught by the right MANDATORY policy; the same encodings from private sources are not."""

import itertools

import pytest

from tests.policies.kit import EXPOSURE_POLICIES, firewall, flagged_by, hrule, ingress_rule, sg, sg_rule, violations

GUARDED = {
    "no-public-kumomta-http": 8000,
    "no-public-socks-proxy": 5000,
    "no-public-metrics": 9101,
    "no-public-ssh": 22,
}

PUBLIC_SOURCES = [
    ["0.0.0.0/0"],
    ["::/0"],
    ["10.0.0.0/8", "0.0.0.0/0"],  # the second CIDR is the bad one
    ["192.168.1.1/32", "::/0"],
    ["0.0.0.0/1"],
    ["2000::/3"],
    ["4.0.0.0/6"],
    ["1.2.3.4/0"],  # host bits set
]
PRIVATE_SOURCES = [["10.0.0.0/8"], ["192.168.1.1/32", "fd00::/8"], ["203.0.113.10/32"], ["2a01:4f8::1/128"]]


def aws_encodings(port: int):
    """(protocol, fromPort, toPort) spellings that all admit `port`/tcp."""
    spellings = ["tcp", "TCP", "6", 6, 6.0]
    ranges = [(port, port), (port - 1, port + 1), (0, 65535), (float(port), float(port)), (str(port), str(port))]
    yield from ((p, lo, hi) for p, (lo, hi) in itertools.product(spellings, ranges))
    yield from ((p, 0, 0) for p in ("-1", -1, -1.0, "all", "ALL"))


def hcloud_encodings(port: int):
    """(protocol, port) spellings that all admit `port`/tcp on a Hetzner firewall."""
    ports = [str(port), f"{port - 1}-{port + 1}", "any", "ANY", None, port]
    return itertools.product(["tcp", "TCP", " tcp "], ports)


def split(sources):
    return [s for s in sources if ":" not in s], [s for s in sources if ":" in s]


def inline(protocol, lo, hi, sources):
    v4, v6 = split(sources)
    return sg({"protocol": protocol, "fromPort": lo, "toPort": hi, "cidrBlocks": v4, "ipv6CidrBlocks": v6})


def group_rule(protocol, lo, hi, sources):
    v4, v6 = split(sources)
    return sg_rule(protocol=protocol, fromPort=lo, toPort=hi, cidrBlocks=v4, ipv6CidrBlocks=v6)


def vpc_rules(protocol, lo, hi, sources):
    """A SecurityGroupIngressRule holds one source: one resource per source."""
    key = {False: "cidrIpv4", True: "cidrIpv6"}
    return [ingress_rule(ipProtocol=protocol, fromPort=lo, toPort=hi, **{key[":" in s]: s}) for s in sources]


def hcloud_rule(protocol, port, sources):
    return firewall(hrule(port, *sources, protocol=protocol))


def cases(form: str, port: int, sources_list):
    """Every (label, [args]) of one resource form for `port` and each source list."""
    for sources in sources_list:
        if form == "hcloud":
            for protocol, written in hcloud_encodings(port):
                yield f"{protocol!r} {written!r} {sources}", [hcloud_rule(protocol, written, sources)]
            continue
        for protocol, lo, hi in aws_encodings(port):
            label = f"{protocol!r} {lo!r}-{hi!r} {sources}"
            if form == "inline":
                yield label, [inline(protocol, lo, hi, sources)]
            elif form == "group-rule":
                yield label, [group_rule(protocol, lo, hi, sources)]
            else:
                yield label, vpc_rules(protocol, lo, hi, sources)


FORMS = ["inline", "group-rule", "vpc-rule", "hcloud"]


@pytest.mark.parametrize("policy", GUARDED)
@pytest.mark.parametrize("form", FORMS)
def test_every_public_encoding_is_caught(form, policy):
    escaped = [
        label
        for label, args in cases(form, GUARDED[policy], PUBLIC_SOURCES)
        if not any(violations(policy, a) for a in args)
    ]
    assert escaped == []


@pytest.mark.parametrize("policy", GUARDED)
@pytest.mark.parametrize("form", FORMS)
def test_the_same_encodings_from_private_or_single_hosts_pass(form, policy):
    flagged = [
        label
        for label, args in cases(form, GUARDED[policy], PRIVATE_SOURCES)
        if any(flagged_by(a, EXPOSURE_POLICIES) for a in args)
    ]
    assert flagged == []


def test_the_table_is_not_empty():
    assert sum(1 for _ in cases("inline", 5000, PUBLIC_SOURCES)) == len(PUBLIC_SOURCES) * 30
