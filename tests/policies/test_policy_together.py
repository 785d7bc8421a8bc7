"""Public adds up: the sources of one rule, one security group or one firewall are counted together
on each guarded port, and the whole set is named. One resource's set is its resource policy's to
report; a set that spans resources (rule resources of one group) is the stack policy's."""

import ipaddress

import pytest

from tests.policies.kit import (
    INGRESS_RULE,
    SG,
    SG_RULE,
    assert_no_violation,
    assert_violation,
    aws_stack,
    firewall,
    hcloud_stack,
    hrule,
    native_sg,
    node,
    sg,
    stack,
    tcp,
    violations,
)


def slash17s(count: int, base: str = "20.0.0.0/8") -> list[str]:
    return [str(n) for n in list(ipaddress.ip_network(base).subnets(new_prefix=17))[:count]]


def test_100_slash17s_in_one_hetzner_rule_are_public_and_all_named():
    sources = slash17s(100)
    (message,) = violations("no-public-socks-proxy", firewall(hrule("5000", *sources), name="proxy-fw"))
    assert message.startswith(
        "proxy-fw: 100 sources, each below the public threshold, together open 5000/tcp (the KumoProxy SOCKS5 "
        "listener) to 3,276,800 globally routable IPv4 addresses (public from 65,536, an IPv4 /16's worth): "
        "rules[0] (tcp 5000 from sourceIps[0] = 20.0.0.0/17, sourceIps[1] = 20.0.128.0/17, "
    )
    assert all(f"sourceIps[{i}] = {s}" in message for i, s in enumerate(sources))
    assert message.endswith(
        "sourceIps[99] = 20.49.128.0/17). Fix: admit 5000 only from the MTA hosts' security "
        "group or their private addresses."
    )


def test_64_slash17s_across_the_rules_of_one_group_are_public():
    entries = [tcp(22, source) for source in slash17s(64)]
    assert_violation("no-public-ssh", sg(*entries, name="mta-sg"), "mta-sg: 64 sources", "2,097,152", "ingress[63]")


def test_rules_of_one_firewall_add_up_on_the_ports_they_share():
    half = slash17s(2)
    fw = firewall(hrule("9090-9101", half[0]), hrule("9100-9200", half[1]))
    assert_violation("no-public-metrics", fw, "together open 9100-9101/tcp (a metrics port)", "rules[0]", "rules[1]")
    assert_no_violation("no-public-metrics", firewall(hrule("9090-9099", half[0]), hrule("9100-9101", half[1])))


def test_overlapping_sources_count_once():
    assert_no_violation("no-public-ssh", firewall(hrule("22", *["20.0.0.0/17"] * 50, "20.0.0.0/18")))


def test_private_and_reserved_space_never_adds_up():
    private = [str(n) for n in ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=12)]
    assert_no_violation("no-public-ssh", firewall(hrule("22", *private, "192.168.0.0/16", "fd00::/8")))


def test_families_add_up_apart():
    v6 = [str(n) for n in ipaddress.ip_network("2a01::/31").subnets(new_prefix=33)]
    assert_violation("no-public-ssh", firewall(hrule("22", *v6)), "2 IPv6 /32s' worth")
    assert_no_violation("no-public-ssh", firewall(hrule("22", v6[0], "20.0.0.0/17")))


def test_a_source_public_alone_is_reported_alone_not_again_in_a_set():
    found = violations("no-public-ssh", sg(tcp(22, "0.0.0.0/0", *slash17s(2))))
    assert len(found) == 2
    assert "to public source 0.0.0.0/0" in found[0]
    assert found[1].startswith("sg: 2 sources")


def test_aws_native_group_entries_add_up_too():
    entries = [{"ipProtocol": "tcp", "fromPort": 8000, "toPort": 8000, "cidrIp": s} for s in slash17s(2)]
    assert_violation("no-public-kumomta-http", native_sg(*entries), "nsg: 2 sources", "securityGroupIngress[1]")


# Across resources: only the stack shows the set.


def ssh_rules(sources: list[str], group: str = "proxy-sg", type_: str = INGRESS_RULE) -> list:
    if type_ == INGRESS_RULE:
        props = [{"ipProtocol": "tcp", "cidrIpv4": s} for s in sources]
    else:
        props = [{"type": "ingress", "protocol": "tcp", "cidrBlocks": [s]} for s in sources]
    return [
        node(type_, f"ssh-{i}", securityGroupId=group, fromPort=22, toPort=22, description="x", **p)
        for i, p in enumerate(props)
    ]


@pytest.mark.parametrize("type_", [INGRESS_RULE, SG_RULE])
def test_64_rule_resources_of_one_group_add_up_in_the_stack(type_):
    args = stack(*aws_stack(*ssh_rules(slash17s(64), type_=type_)))
    (message,) = violations("no-public-guarded-ports", args)
    assert message.startswith("proxy-sg: 64 sources, each below the public threshold, together open 22/tcp (SSH)")
    assert "ssh-0 rule (tcp 22 from " in message and "ssh-63 rule" in message


def test_rule_resources_and_inline_rules_of_one_group_add_up():
    inline = node(SG, "ops-sg", id="ops-sg", ingress=[tcp(22, slash17s(1)[0])])
    args = stack(inline, *ssh_rules(slash17s(2)[1:], group="ops-sg"))
    assert_violation("no-public-guarded-ports", args, "ops-sg: 2 sources", "ops-sg ingress[0]", "ssh-0 rule")


def test_rule_resources_of_a_group_outside_the_stack_add_up_per_group():
    args = stack(*ssh_rules(slash17s(2), group="sg-0elsewhere"))
    assert_violation("no-public-guarded-ports", args, "security group sg-0elsewhere: 2 sources")
    split = stack(*ssh_rules(slash17s(1), group="sg-a"), *ssh_rules(slash17s(2)[1:], group="sg-b"))
    assert_no_violation("no-public-guarded-ports", split)


def test_rule_resources_without_a_group_are_not_gathered_together():
    rules = [
        node(INGRESS_RULE, f"r{i}", ipProtocol="tcp", fromPort=22, toPort=22, cidrIpv4=c)
        for i, c in enumerate(slash17s(2))
    ]
    assert_no_violation("no-public-guarded-ports", stack(*rules))


def test_what_one_resource_shows_is_left_to_its_resource_policy():
    args = stack(*aws_stack(node(SG, "extra", id="extra", ingress=[tcp(22, *slash17s(2)), tcp(5000, "0.0.0.0/0")])))
    assert_no_violation("no-public-guarded-ports", args)


def test_hetzner_firewall_sets_are_the_resource_policys():
    args = stack(*hcloud_stack(proxy_rules=(hrule("22", *slash17s(100)),)))
    assert_no_violation("no-public-guarded-ports", args)
    assert_violation("no-public-ssh", firewall(hrule("22", *slash17s(100))), "100 sources")


def test_the_legitimate_layouts_draw_nothing():
    assert_no_violation("no-public-guarded-ports", stack(*aws_stack()))
    assert_no_violation("no-public-guarded-ports", stack(*hcloud_stack()))
