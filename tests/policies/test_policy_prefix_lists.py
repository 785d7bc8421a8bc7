"""Prefix lists on guarded ports: judged by their entries when the stack shows them, fail closed when
it does not, unless the policy config allows a list by ID.

Property names, from pulumi-aws: `ec2.SecurityGroup` ingress[].prefixListIds and
`ec2.SecurityGroupRule` prefixListIds (lists), `vpc.SecurityGroupIngressRule` prefixListId;
`ec2.ManagedPrefixList` entries[].cidr and `ec2.ManagedPrefixListEntry` prefixListId + cidr
(https://www.pulumi.com/registry/packages/aws/api-docs/ec2/managedprefixlist/,
https://www.pulumi.com/registry/packages/aws/api-docs/ec2/managedprefixlistentry/). aws-native:
sourcePrefixListId.
"""

import pytest

from tests.policies.kit import (
    INGRESS_RULE,
    NATIVE_INGRESS,
    SG,
    SG_RULE,
    UNKNOWN,
    assert_no_violation,
    assert_violation,
    aws_stack,
    node,
    stack,
    violations,
)

PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
PREFIX_LIST_ENTRY = "aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry"
POLICY = "no-public-guarded-ports"


def on_port(port: int, pl: str = "pl-0123abcd", form: str = "vpc-rule", **extra):
    """A rule on the proxy group admitting `port` from a prefix list, in one of four forms."""
    if form == "vpc-rule":
        props = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "prefixListId": pl}
        return node(INGRESS_RULE, "pl-rule", securityGroupId="proxy-sg", **props, **extra)
    if form == "group-rule":
        props = {"type": "ingress", "protocol": "tcp", "fromPort": port, "toPort": port, "prefixListIds": [pl]}
        return node(SG_RULE, "pl-rule", securityGroupId="proxy-sg", **props, **extra)
    if form == "native":
        props = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "sourcePrefixListId": pl}
        return node(NATIVE_INGRESS, "pl-rule", groupId="proxy-sg", **props, **extra)
    entry = {"protocol": "tcp", "fromPort": port, "toPort": port, "prefixListIds": [pl]}
    return node(SG, "pl-rule", id="extra-sg", ingress=[entry], **extra)


def plist(*cidrs, name: str = "office", id_: str = "pl-0123abcd", **props):
    return node(PREFIX_LIST, name, id=id_, entries=[{"cidr": c} for c in cidrs], **props)


@pytest.mark.parametrize("form", ["vpc-rule", "group-rule", "native", "inline"])
@pytest.mark.parametrize(("port", "what"), [(22, "SSH"), (5000, "SOCKS5"), (8000, "KumoMTA HTTP"), (9101, "metrics")])
def test_a_prefix_list_the_stack_does_not_show_fails_closed_on_every_guarded_port(form, port, what):
    assert_violation(
        POLICY,
        stack(*aws_stack(on_port(port, form=form))),
        f"admits {port}/tcp",
        what,
        "from prefix list pl-0123abcd, whose entries this stack does not show",
        '{"no-public-guarded-ports": {"allowedPrefixLists": ["pl-0123abcd"]}}',
    )


def test_a_prefix_list_off_the_guarded_ports_is_not_a_matter():
    assert_no_violation(POLICY, stack(*aws_stack(on_port(443))))


def test_an_allowlisted_prefix_list_passes_and_only_that_one():
    config = {"allowedPrefixLists": ["pl-0123abcd"]}
    assert_no_violation(POLICY, stack(*aws_stack(on_port(22)), config=config))
    assert_violation(POLICY, stack(*aws_stack(on_port(22, pl="pl-0fff")), config=config), "pl-0fff")


def test_a_prefix_list_in_the_stack_with_private_entries_passes():
    assert_no_violation(POLICY, stack(*aws_stack(on_port(22), plist("10.0.0.0/8", "192.168.1.0/24"))))


def test_a_public_entry_is_caught_and_named_inline_or_as_an_entry_resource():
    assert_violation(
        POLICY,
        stack(*aws_stack(on_port(22), plist("10.0.0.0/8", "0.0.0.0/0"))),
        "proxy-sg pl-rule rule (tcp 22 from prefixListId = pl-0123abcd -> office.entries[1].cidr = 0.0.0.0/0)",
        "opens 22/tcp (SSH) to public source 0.0.0.0/0",
    )
    entry = node(PREFIX_LIST_ENTRY, "office-wide", prefixListId="pl-0123abcd", cidr="::/0")
    assert_violation(POLICY, stack(*aws_stack(on_port(22), plist(), entry)), "office-wide.cidr = ::/0")


def test_entries_add_up():
    args = stack(*aws_stack(on_port(5000), plist("20.0.0.0/17", "20.0.128.0/17")))
    assert_violation(POLICY, args, "proxy-sg: 2 sources, each below the public threshold, together open 5000/tcp")


def test_entries_add_up_with_the_groups_other_sources():
    extra = node(
        INGRESS_RULE,
        "ssh-b",
        securityGroupId="proxy-sg",
        ipProtocol="tcp",
        fromPort=22,
        toPort=22,
        cidrIpv4="20.0.128.0/17",
    )
    args = stack(*aws_stack(on_port(22), plist("20.0.0.0/17"), extra))
    assert_violation(POLICY, args, "proxy-sg: 2 sources", "office.entries[0].cidr = 20.0.0.0/17", "ssh-b rule")


def test_in_preview_a_list_found_by_dependency_is_judged():
    rule = on_port(22, pl=UNKNOWN, deps={"prefixListId": ["office"]})
    assert_violation(POLICY, stack(*aws_stack(rule, plist("0.0.0.0/0", id_=UNKNOWN))), "0.0.0.0/0")


def test_in_preview_an_unresolved_list_or_unknown_entries_are_named_not_judged():
    args = stack(*aws_stack(on_port(22, pl=UNKNOWN)))
    assert_no_violation(POLICY, args)
    assert_violation("stack-preview-unknowns", args, "pl-rule.prefixListId", "ManagedPrefixList")
    unknown_entries = node(PREFIX_LIST, "office", id="pl-0123abcd", entries=UNKNOWN)
    args = stack(*aws_stack(on_port(22), unknown_entries))
    assert_no_violation(POLICY, args)
    (message,) = violations("stack-preview-unknowns", args)
    assert message == (
        "office.entries: unknown until the update runs, so whether the entries of office are public is judged once "
        "it is known."
    )


def test_metrics_ports_follow_the_policy_config():
    args = stack(*aws_stack(on_port(9300)), config={"metricsPorts": [9300]})
    assert_violation(POLICY, args, "9300/tcp (a metrics port)")
