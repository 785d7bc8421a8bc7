"""The normaliser: every ingress form becomes the same Openings, and reading fails closed."""

import pytest
from kumoguard import model
from kumoguard.model import ALL, ANY_PORT, UNKNOWN, openings, plain
from pulumi_policy.proxy import unknown_checking_proxy

from tests.policies.kit import FIREWALL, INGRESS_RULE, NATIVE_INGRESS, NATIVE_SG, SG, SG_RULE
from tests.policies.kit import UNKNOWN as WIRE_UNKNOWN


def one(type_: str, **props) -> model.Opening:
    (opening,) = openings(type_, props)
    return opening


@pytest.mark.parametrize(
    ("written", "protocol"),
    [
        ("tcp", "tcp"),
        ("TCP", "tcp"),
        (" Tcp ", "tcp"),
        ("6", "tcp"),
        (6, "tcp"),
        (6.0, "tcp"),
        ("6.0", "tcp"),
        ("17", "udp"),
        ("UDP", "udp"),
        ("1", "icmp"),
        ("icmpv6", "icmpv6"),
        ("-1", ALL),
        (-1, ALL),
        (-1.0, ALL),
        ("all", ALL),
        ("ALL", ALL),
        ("132", "132"),
        ("bogus", ALL),
        (None, ALL),
        (6.5, ALL),
        (300, ALL),
    ],
)
def test_protocols_normalise_whatever_their_spelling(written, protocol):
    assert one(INGRESS_RULE, ipProtocol=written, fromPort=1, toPort=1, cidrIpv4="10.0.0.0/8").protocol == protocol


def test_non_tcp_udp_protocols_cover_every_port_whatever_ports_say():
    assert (
        one(SG_RULE, type="ingress", protocol="-1", fromPort=0, toPort=0, cidrBlocks=["1.2.3.4/32"]).ports == ANY_PORT
    )
    assert (
        one(SG_RULE, type="ingress", protocol="132", fromPort=80, toPort=80, cidrBlocks=["1.2.3.4/32"]).ports
        == ANY_PORT
    )


@pytest.mark.parametrize(
    ("from_port", "to_port", "ports"),
    [
        (5000, 5000, (5000, 5000)),
        (5000.0, 5000.0, (5000, 5000)),
        ("22", "25", (22, 25)),
        (9100, 9090, (9090, 9100)),
        (None, 80, ANY_PORT),
        (-1, 70000, ANY_PORT),
        ("x", 1, ANY_PORT),
    ],
)
def test_aws_port_ranges(from_port, to_port, ports):
    opening = one(INGRESS_RULE, ipProtocol="tcp", fromPort=from_port, toPort=to_port, cidrIpv4="10.0.0.0/8")
    assert opening.ports == ports


@pytest.mark.parametrize(
    ("port", "ports"),
    [
        ("5000", (5000, 5000)),
        ("9090-9101", (9090, 9101)),
        (" 80 - 85 ", (80, 85)),
        ("any", ANY_PORT),
        ("ANY", ANY_PORT),
        (None, ANY_PORT),
        ("", ANY_PORT),
        (5000, (5000, 5000)),
        ("1-x", ANY_PORT),
    ],
)
def test_hcloud_port_strings(port, ports):
    rule = {"direction": "in", "protocol": "tcp", "port": port, "sourceIps": ["10.0.0.0/8"]}
    assert one(FIREWALL, rules=[rule]).ports == ports


def test_every_source_of_a_rule_is_its_own_opening_in_order():
    entry = {
        "protocol": "tcp",
        "fromPort": 22,
        "toPort": 22,
        "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"],
        "ipv6CidrBlocks": ["::/0"],
        "securityGroups": ["sg-1"],
        "prefixListIds": ["pl-1"],
        "self": True,
    }
    found = [(o.source.kind, o.source.field, o.source.text) for o in openings(SG, {"ingress": [entry]})]
    assert found == [
        ("cidr", "cidrBlocks[0]", "10.0.0.0/8"),
        ("cidr", "cidrBlocks[1]", "0.0.0.0/0"),
        ("cidr", "ipv6CidrBlocks[0]", "::/0"),
        ("security-group", "securityGroups[0]", "sg-1"),
        ("prefix-list", "prefixListIds[0]", "pl-1"),
        ("security-group", "self", "self"),
    ]


def test_rule_labels_carry_the_index():
    rules = [
        {"direction": "out", "protocol": "tcp", "port": "25", "destinationIps": ["0.0.0.0/0"]},
        {"direction": "in", "protocol": "tcp", "port": "80", "sourceIps": ["0.0.0.0/0"]},
    ]
    (opening,) = openings(FIREWALL, {"rules": rules})
    assert (opening.rule, opening.index) == ("rules[1]", 1)


def test_egress_forms_are_not_openings():
    assert openings(SG_RULE, {"type": "egress", "protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}) == []
    assert openings(SG, {"egress": [{"protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]}) == []
    assert openings("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", {"cidrIpv4": "0.0.0.0/0"}) == []


def test_ingress_rule_single_sources():
    opening = one(INGRESS_RULE, ipProtocol="tcp", fromPort=1, toPort=2, cidrIpv6="::/0", description="d")
    assert (opening.rule, opening.source.field, opening.description) == ("rule", "cidrIpv6", "d")


def test_default_security_group_inline_rules_are_read_too():
    entry = {"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}
    assert one(model.DEFAULT_SECURITY_GROUP, ingress=[entry]).source.text == "self"


def test_unknown_protocol_and_ports_widen_and_are_named():
    opening = one(INGRESS_RULE, ipProtocol=UNKNOWN, fromPort=UNKNOWN, toPort=80, cidrIpv4="0.0.0.0/0")
    assert (opening.protocol, opening.ports, opening.unknown) == (ALL, ANY_PORT, ("ipProtocol",))
    opening = one(INGRESS_RULE, ipProtocol="tcp", fromPort=UNKNOWN, toPort=80, cidrIpv4="0.0.0.0/0")
    assert (opening.ports, opening.unknown) == (ANY_PORT, ("fromPort",))


def test_unknown_source_stays_unjudged_but_the_rest_is_read():
    entry = {"protocol": "tcp", "fromPort": 5000, "toPort": 5000, "cidrBlocks": [UNKNOWN, "0.0.0.0/0"]}
    first, second = openings(SG, {"ingress": [entry]})
    assert (first.source.known, first.source.is_public) == (False, False)
    assert (second.source.known, second.source.is_public) == (True, True)


def test_unknown_rule_list_admits_nothing_judged():
    (opening,) = openings(SG, {"ingress": UNKNOWN})
    assert (opening.source.kind, opening.admits(8000)) == ("rule", False)


def test_unknown_direction_or_type_count_as_ingress():
    rule = {"direction": UNKNOWN, "protocol": "tcp", "port": "22", "sourceIps": ["0.0.0.0/0"]}
    assert one(FIREWALL, rules=[rule]).unknown == ("direction",)
    assert one(SG_RULE, type=UNKNOWN, protocol="tcp", fromPort=22, toPort=22, cidrBlocks=["0.0.0.0/0"]).unknown == (
        "type",
    )


def test_unreadable_cidr_is_taken_as_public():
    assert one(INGRESS_RULE, ipProtocol="tcp", fromPort=1, toPort=1, cidrIpv4="everyone").source.is_public


def test_plain_turns_the_sdk_proxy_unknowns_into_the_sentinel():
    proxied = unknown_checking_proxy({"a": WIRE_UNKNOWN, "b": [1, WIRE_UNKNOWN], "c": {"d": "x"}})
    assert plain(proxied) == {"a": UNKNOWN, "b": [1, UNKNOWN], "c": {"d": "x"}}


def test_other_resource_types_have_no_openings():
    assert openings("aws:s3/bucket:Bucket", {"ingress": [{"protocol": "-1"}]}) == []


# aws-native, from pulumi/pulumi-aws-native sdk/python/pulumi_aws_native/ec2/security_group.py and
# security_group_ingress.py (https://www.pulumi.com/registry/packages/aws-native/api-docs/ec2/securitygroupingress/):
# AWS::EC2::SecurityGroup's `securityGroupIngress` entries and AWS::EC2::SecurityGroupIngress share the keys
# ipProtocol, fromPort, toPort, cidrIp, cidrIpv6, sourcePrefixListId, sourceSecurityGroupId, sourceSecurityGroupName.
def test_aws_native_group_entries_and_ingress_resources_are_read_with_their_own_keys():
    entry = {
        "ipProtocol": "tcp",
        "fromPort": 22,
        "toPort": 22,
        "cidrIp": "0.0.0.0/0",
        "cidrIpv6": "::/0",
        "sourcePrefixListId": "pl-1",
        "sourceSecurityGroupId": "sg-1",
        "sourceSecurityGroupName": "mta",
    }
    found = [
        (o.rule, o.ports, o.source.kind, o.source.field) for o in openings(NATIVE_SG, {"securityGroupIngress": [entry]})
    ]
    assert found == [
        ("securityGroupIngress[0]", (22, 22), "cidr", "cidrIp"),
        ("securityGroupIngress[0]", (22, 22), "cidr", "cidrIpv6"),
        ("securityGroupIngress[0]", (22, 22), "security-group", "sourceSecurityGroupId"),
        ("securityGroupIngress[0]", (22, 22), "security-group", "sourceSecurityGroupName"),
        ("securityGroupIngress[0]", (22, 22), "prefix-list", "sourcePrefixListId"),
    ]
    opening = one(NATIVE_INGRESS, ipProtocol="-1", groupId="sg-1", cidrIp="10.0.0.0/8")
    assert (opening.rule, opening.protocol, opening.ports, opening.source.text) == ("rule", ALL, ANY_PORT, "10.0.0.0/8")


def test_aws_native_egress_is_not_an_opening():
    assert openings(NATIVE_SG, {"securityGroupEgress": [{"ipProtocol": "-1", "cidrIp": "0.0.0.0/0"}]}) == []


def test_tags_read_as_a_map_or_as_aws_native_key_value_pairs():
    assert model.tag({"tags": {"kumomta-role": "mta"}}, "kumomta-role") == "mta"
    assert (
        model.tag({"tags": [{"key": "Name", "value": "x"}, {"key": "kumomta-role", "value": "proxy"}]}, "kumomta-role")
        == "proxy"
    )
    assert model.tag({"tags": UNKNOWN}, "kumomta-role") is UNKNOWN
    assert model.tag({}, "kumomta-role") is None
