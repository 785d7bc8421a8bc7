"""Stack policies over whole (hand-made) stacks: the legitimate layouts pass, each breach is caught."""

import pytest
from kumoguard.topology import Node as TopoNode
from kumoguard.topology import Topology

from tests.policies.kit import (
    EIP,
    ENI,
    FIREWALL,
    INGRESS_RULE,
    INSTANCE,
    PRIMARY_IP,
    SERVER,
    SG,
    SG_RULE,
    UNKNOWN,
    assert_no_violation,
    assert_violation,
    aws_stack,
    flagged_by,
    hcloud_stack,
    hrule,
    node,
    stack,
)

STACK_MANDATORY = ["socks-from-mta-only", "mta-never-admits-8000", "host-has-own-guard", "sending-ips-protected"]


def socks_rule(preview: bool = False, **source) -> object:
    """A second 5000/tcp rule on the proxy group, with the given source."""
    group = UNKNOWN if preview else "proxy-sg"
    props = {"securityGroupId": group, "ipProtocol": "tcp", "fromPort": 5000, "toPort": 5000}
    return node(INGRESS_RULE, "extra-5000", **props, **source, deps={"securityGroupId": ["proxy-sg"]})


@pytest.mark.parametrize("preview", [False, True])
def test_legitimate_aws_layout_passes(preview):
    args = stack(*aws_stack(preview=preview))
    assert flagged_by(args, STACK_MANDATORY) == set()
    assert_no_violation("stack-preview-unknowns", args)


def test_legitimate_hcloud_layout_passes():
    assert flagged_by(stack(*hcloud_stack()), STACK_MANDATORY) == set()


@pytest.mark.parametrize(
    "source",
    [
        {"cidrIpv4": "0.0.0.0/0"},
        {"cidrIpv4": "198.51.100.99/32"},  # a single public host that is not an MTA
        {"cidrIpv4": "198.51.100.5/32"},  # the proxy's own EIP
        {"referencedSecurityGroupId": "proxy-sg"},  # proxies reaching each other
        {"referencedSecurityGroupId": "sg-0elsewhere"},  # a group outside this stack
        {"prefixListId": "pl-123"},
    ],
)
def test_socks_from_anything_but_the_mtas_is_caught(source):
    assert_violation("socks-from-mta-only", stack(*aws_stack(socks_rule(**source))), "extra-5000", "5000/tcp")


@pytest.mark.parametrize(
    "source",
    [{"cidrIpv4": "10.42.1.0/24"}, {"cidrIpv6": "fd00::/8"}, {"cidrIpv4": "198.51.100.3/32"}],  # last: the MTA EIP
)
def test_socks_from_private_ranges_or_an_mta_address_passes(source):
    assert_no_violation("socks-from-mta-only", stack(*aws_stack(socks_rule(**source))))


def test_socks_rule_inline_on_a_group_attached_to_the_proxy_is_judged_too():
    inline = {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}
    extra = node(SG, "extra-sg", id="extra-sg", ingress=[inline])
    nodes = aws_stack(extra)
    next(n for n in nodes if n.name == "proxy-eni").props["securityGroups"].append("extra-sg")
    assert_violation("socks-from-mta-only", stack(*nodes), "extra-sg ingress[0] (every protocol every port")


def test_unknown_source_without_dependencies_is_named_not_judged():
    args = stack(*aws_stack(socks_rule(preview=True, referencedSecurityGroupId=UNKNOWN), preview=True))
    assert_no_violation("socks-from-mta-only", args)
    assert_violation("stack-preview-unknowns", args, "extra-5000.referencedSecurityGroupId", "SecurityGroup")


def test_unknown_source_resolved_by_dependency_is_judged():
    extra = node(
        INGRESS_RULE,
        "extra-5000",
        securityGroupId=UNKNOWN,
        ipProtocol="tcp",
        fromPort=5000,
        toPort=5000,
        referencedSecurityGroupId=UNKNOWN,
        deps={"securityGroupId": ["proxy-sg"], "referencedSecurityGroupId": ["proxy-sg"]},
    )
    assert_violation("socks-from-mta-only", stack(*aws_stack(extra, preview=True)), "extra-5000")


@pytest.mark.parametrize(
    "rule",
    [
        {"protocol": "tcp", "fromPort": 8000, "toPort": 8000, "self": True},
        {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["10.0.0.0/8"]},
        {"protocol": "tcp", "fromPort": 7000, "toPort": 9000, "sourceSecurityGroupId": "proxy-sg"},
    ],
)
def test_any_8000_on_an_mta_group_is_caught(rule):
    extra = node(SG_RULE, "mta-8000", type="ingress", securityGroupId="mta-sg", **rule)
    assert_violation("mta-never-admits-8000", stack(*aws_stack(extra)), "mta-8000 rule", "mta-sg")


def test_8000_on_a_group_guarding_an_mta_by_attachment_only_is_caught():
    untagged = node(
        SG,
        "ops-sg",
        id="ops-sg",
        ingress=[{"protocol": "tcp", "fromPort": 8000, "toPort": 8000, "securityGroups": ["proxy-sg"]}],
    )
    nodes = aws_stack(untagged)
    next(n for n in nodes if n.name == "mta-instance").props["vpcSecurityGroupIds"] = ["ops-sg"]
    assert_violation("mta-never-admits-8000", stack(*nodes), "ops-sg ingress[0]")


def test_8000_on_a_proxy_only_group_is_not_an_mta_matter():
    extra = node(
        SG_RULE,
        "proxy-8000",
        type="ingress",
        securityGroupId="proxy-sg",
        protocol="tcp",
        fromPort=8000,
        toPort=8000,
        cidrBlocks=["10.0.0.0/8"],
    )
    assert_no_violation("mta-never-admits-8000", stack(*aws_stack(extra)))


def test_host_on_the_vpc_default_group_is_caught():
    nodes = aws_stack()
    next(n for n in nodes if n.name == "mta-eni").props["securityGroups"] = []
    assert_violation("host-has-own-guard", stack(*nodes), "mta-instance", "VPC default")


def test_host_on_the_adopted_default_group_is_caught():
    default = node("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "default-sg", id="sg-default")
    nodes = aws_stack(default)
    next(n for n in nodes if n.name == "proxy-eni").props["securityGroups"] = ["sg-default"]
    assert_violation("host-has-own-guard", stack(*nodes), "proxy-instance")


def test_instance_with_its_group_attached_directly_passes():
    bare = node(INSTANCE, "bare", vpcSecurityGroupIds=["mta-sg"], tags={"kumomta-role": "mta"})
    assert_no_violation("host-has-own-guard", stack(*aws_stack(bare)))


def test_group_attached_through_an_eni_attachment_resource_counts():
    nodes = aws_stack(
        node(
            "aws:ec2/networkInterfaceSecurityGroupAttachment:NetworkInterfaceSecurityGroupAttachment",
            "attach",
            securityGroupId="mta-sg",
            networkInterfaceId="mta-eni",
        )
    )
    next(n for n in nodes if n.name == "mta-eni").props["securityGroups"] = []
    assert_no_violation("host-has-own-guard", stack(*nodes))


def test_hcloud_server_without_a_firewall_is_caught():
    args = stack(*hcloud_stack(node(SERVER, "stray", id="3", labels={"team": "mail"})))
    assert_violation("host-has-own-guard", args, "stray", "no cloud firewall")


@pytest.mark.parametrize(
    "attachment",
    [
        node(SERVER, "extra", id="3", firewallIds=[101.0]),
        node(SERVER, "extra", id="3", labels={"team": "mail"}),
    ],
)
def test_hcloud_firewall_by_id_or_by_attachment_resource_counts(attachment):
    by_resource = node(
        "hcloud:index/firewallAttachment:FirewallAttachment",
        "att",
        firewallId=102,
        serverIds=[3],
        labelSelectors=["team=mail,!kumomta-role"],
    )
    assert_no_violation("host-has-own-guard", stack(*hcloud_stack(attachment, by_resource)))


def test_hcloud_socks_rule_from_the_mta_server_address_passes_and_from_anyone_fails():
    assert_no_violation("socks-from-mta-only", stack(*hcloud_stack(proxy_rules=(hrule("5000", "198.51.100.7/32"),))))
    assert_violation(
        "socks-from-mta-only",
        stack(*hcloud_stack(proxy_rules=(hrule("4000-6000", "::/0"),))),
        "proxy-fw rules[1] (tcp 4000-6000 from sourceIps[0] = ::/0)",
    )


def test_unprotected_sending_ips_are_caught_on_both_clouds():
    eip = node(EIP, "spare-eip", publicIp="198.51.100.50")
    primary = node(PRIMARY_IP, "spare-ip", ipAddress="198.51.100.51")
    assert_violation("sending-ips-protected", stack(*aws_stack(eip)), "spare-eip", "protect=True")
    assert_violation("sending-ips-protected", stack(*hcloud_stack(primary)), "spare-ip")


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("kumomta-role=mta", {"mta"}),
        ("kumomta-role==proxy", {"proxy"}),
        ("kumomta-role!=mta", {"proxy", "bare"}),
        ("kumomta-role", {"mta", "proxy"}),
        ("!kumomta-role", {"bare"}),
        ("kumomta-role in (mta,proxy)", {"mta", "proxy"}),
        ("kumomta-role notin (mta), tier=x", set()),
    ],
)
def test_hcloud_label_selectors(selector, matches):
    servers = [
        TopoNode(f"urn:{n}", SERVER, n, {"id": n, "labels": labels})
        for n, labels in [("mta", {"kumomta-role": "mta"}), ("proxy", {"kumomta-role": "proxy"}), ("bare", {})]
    ]
    fw = TopoNode("urn:fw", FIREWALL, "fw", {"id": "fw", "applyTos": [{"labelSelector": selector}]})
    topo = Topology([*servers, fw])
    assert {s.name for s in servers if "urn:fw" in topo.guards_of[s.urn]} == matches


def test_a_bare_eni_is_not_a_host():
    assert_no_violation("host-has-own-guard", stack(node(ENI, "lonely", securityGroups=[])))


@pytest.mark.parametrize(
    ("nodes", "host", "outside"),
    [
        ([node(INSTANCE, "ext", id="i-9", vpcSecurityGroupIds=["sg-0shared"])], "ext", "sg-0shared"),
        ([node(SERVER, "ext", id="9", firewallIds=[999])], "ext", "999"),
    ],
)
def test_a_host_guarded_only_by_a_group_outside_the_stack_is_advisory_not_mandatory(nodes, host, outside):
    args = stack(*aws_stack(*nodes))
    assert_no_violation("host-has-own-guard", args)
    assert_violation(
        "host-guard-outside-stack", args, f"{host}: guarded by {outside}, which this stack does not define"
    )


def test_an_eni_in_an_outside_group_counts_as_outside_too():
    nodes = aws_stack()
    next(n for n in nodes if n.name == "mta-eni").props["securityGroups"] = ["sg-0shared"]
    args = stack(*nodes)
    assert_no_violation("host-has-own-guard", args)
    assert_violation("host-guard-outside-stack", args, "mta-instance: guarded by sg-0shared")


def test_a_host_whose_group_preview_cannot_resolve_is_named_not_judged():
    bare = node(INSTANCE, "bare", id=UNKNOWN, vpcSecurityGroupIds=[UNKNOWN])
    args = stack(*aws_stack(bare, preview=True))
    assert_no_violation("host-has-own-guard", args)
    assert_violation("stack-preview-unknowns", args, "bare.vpcSecurityGroupIds", "SecurityGroup")


def test_the_legitimate_layouts_name_no_outside_guard():
    assert_no_violation("host-guard-outside-stack", stack(*aws_stack()))
    assert_no_violation("host-guard-outside-stack", stack(*hcloud_stack()))


def test_aws_native_groups_guard_hosts_and_carry_roles():
    group = node(
        "aws-native:ec2:SecurityGroup",
        "native-mta",
        id="sg-n",
        groupId="sg-n",
        tags=[{"key": "kumomta-role", "value": "mta"}],
        securityGroupIngress=[{"ipProtocol": "tcp", "fromPort": 8000, "toPort": 8000, "cidrIp": "10.0.0.0/8"}],
    )
    host = node(INSTANCE, "native-host", id="i-n", vpcSecurityGroupIds=["sg-n"], tags={"kumomta-role": "mta"})
    args = stack(*aws_stack(group, host))
    assert_no_violation("host-has-own-guard", args)
    assert_violation("mta-never-admits-8000", args, "native-mta securityGroupIngress[0]")
