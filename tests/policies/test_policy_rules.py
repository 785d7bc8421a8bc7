"""Each resource policy on its own: what it catches, what it lets through, what its message says."""

import json

import pytest

from tests.policies.kit import (
    ADVISORY,
    EXPOSURE_POLICIES,
    INGRESS_RULE,
    MANDATORY,
    POLICIES,
    UNKNOWN,
    assert_no_violation,
    assert_violation,
    firewall,
    hrule,
    ingress_rule,
    resource,
    sg,
    sg_rule,
    tcp,
    violations,
)


def test_levels_hygiene_never_blocks():
    assert set(EXPOSURE_POLICIES) <= set(MANDATORY)
    assert {"kumomta-http-loopback-only", "ingress-rule-described", "role-tagged", "preview-unknowns"} <= set(ADVISORY)


def test_public_8000_is_caught_with_resource_rule_port_source_and_fix():
    assert_violation(
        "no-public-kumomta-http",
        sg(tcp(80, "0.0.0.0/0"), tcp(8000, "10.0.0.0/8", "0.0.0.0/0"), name="mta-sg"),
        "mta-sg ingress[1]",
        "8000/tcp",
        "cidrBlocks[1] = 0.0.0.0/0",
        "Fix: delete the rule",
    )


def test_private_8000_is_only_advisory():
    assert_no_violation("no-public-kumomta-http", sg(tcp(8000, "10.0.0.0/8")))
    assert_violation("kumomta-http-loopback-only", sg(tcp(8000, "10.0.0.0/8")), "admits 8000/tcp")


def test_8000_from_another_group_is_advisory_too():
    assert_violation(
        "kumomta-http-loopback-only", sg_rule(protocol="-1", fromPort=0, toPort=0, sourceSecurityGroupId="sg-1")
    )


def test_public_5000_is_caught():
    assert_violation(
        "no-public-socks-proxy",
        ingress_rule(ipProtocol="tcp", fromPort=5000, toPort=5000, cidrIpv6="::/0"),
        "rule (tcp 5000 from cidrIpv6 = ::/0)",
        "Fix: admit 5000 only from the MTA",
    )


def test_5000_from_the_mta_group_is_not_a_resource_matter():
    assert_no_violation(
        "no-public-socks-proxy",
        ingress_rule(ipProtocol="tcp", fromPort=5000, toPort=5000, referencedSecurityGroupId="sg-mta"),
    )


def test_metrics_default_range_and_9464():
    assert_violation("no-public-metrics", firewall(hrule("9101", "0.0.0.0/0")), "rules[0]", "9101/tcp")
    assert_violation("no-public-metrics", firewall(hrule("9464", "0.0.0.0/0")), "9464/tcp")
    assert_violation("no-public-metrics", firewall(hrule("9000-9095", "0.0.0.0/0")), "9090-9095/tcp")
    assert_no_violation("no-public-metrics", firewall(hrule("9102", "0.0.0.0/0")))
    assert_no_violation("no-public-metrics", firewall(hrule("9101", "10.42.200.0/24")))


def test_metrics_ports_come_from_policy_config():
    config = {"metricsPorts": [9200, "9300-9301"]}
    assert_violation(
        "no-public-metrics",
        resource(INGRESS_RULE, "r", config, ipProtocol="tcp", fromPort=9300, toPort=9300, cidrIpv4="0.0.0.0/0"),
        "9300/tcp",
    )
    assert_no_violation(
        "no-public-metrics",
        resource(INGRESS_RULE, "r", config, ipProtocol="tcp", fromPort=9101, toPort=9101, cidrIpv4="0.0.0.0/0"),
    )


def test_config_numbers_arrive_as_floats_over_grpc():
    args = resource(
        INGRESS_RULE,
        "r",
        {"metricsPorts": [9200.0]},
        ipProtocol="tcp",
        fromPort=9200,
        toPort=9200,
        cidrIpv4="0.0.0.0/0",
    )
    assert_violation("no-public-metrics", args, "9200/tcp")


def test_bad_metrics_config_fails_loudly():
    args = resource(
        INGRESS_RULE, "r", {"metricsPorts": ["90-80"]}, ipProtocol="tcp", fromPort=1, toPort=1, cidrIpv4="0.0.0.0/0"
    )
    with pytest.raises(ValueError, match="metricsPorts"):
        violations("no-public-metrics", args)


def test_the_stacks_own_metrics_port_is_guarded_too(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"kumomta:proxyMetricsPort": "9555", "kumomta:domain": "x.com"}))
    assert_violation("no-public-metrics", firewall(hrule("9555", "0.0.0.0/0")), "9555/tcp")


def test_public_ssh_is_caught_but_admin_networks_pass():
    assert_violation(
        "no-public-ssh",
        sg_rule(protocol="6", fromPort=22.0, toPort=22.0, cidrBlocks=["0.0.0.0/1"]),
        "22/tcp",
        "0.0.0.0/1",
    )
    assert_no_violation(
        "no-public-ssh", sg_rule(protocol="tcp", fromPort=22, toPort=22, cidrBlocks=["198.51.100.7/32"])
    )


def test_legitimate_public_web_ports_pass_every_mandatory_policy():
    args = sg(tcp(80, "0.0.0.0/0", "::/0"), tcp(443, "0.0.0.0/0"))
    assert [p for p in EXPOSURE_POLICIES if violations(p, args)] == []


def test_udp_on_a_guarded_port_is_not_the_tcp_service():
    args = sg_rule(protocol="udp", fromPort=5000, toPort=5000, cidrBlocks=["0.0.0.0/0"])
    assert [p for p in EXPOSURE_POLICIES if violations(p, args)] == []


def test_unknown_ports_during_preview_fail_closed_and_say_so():
    args = ingress_rule(ipProtocol="tcp", fromPort=UNKNOWN, toPort=UNKNOWN, cidrIpv4="0.0.0.0/0")
    assert_violation("no-public-socks-proxy", args, "fromPort, toPort unknown in preview, read as everything")
    assert_violation("preview-unknowns", args, "rule.fromPort (read as everything)")


def test_unknown_source_on_a_guarded_port_is_named_with_the_port_it_reaches():
    args = sg(tcp(5000, UNKNOWN, "0.0.0.0/0"))
    assert len(violations("no-public-socks-proxy", args)) == 1
    (message,) = violations("preview-unknowns", args)
    assert message == (
        "sg: unknown until the update runs: ingress[0].cidrBlocks[0], the source of tcp 5000, which reaches 5000/tcp "
        "(the KumoProxy SOCKS5 listener): whether that is public is not judged yet. They are judged once known."
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ingress_rule(ipProtocol="tcp", fromPort=22, toPort=22, prefixListId=UNKNOWN),
            "rule.prefixListId, the source ",
        ),
        (
            sg_rule(protocol="-1", fromPort=0, toPort=0, cidrBlocks=[UNKNOWN]),
            "5000/tcp (the KumoProxy SOCKS5 listener) and 9090-9101/tcp, 9464/tcp (a metrics port) and 22/tcp (SSH)",
        ),
        (firewall(hrule("9101", UNKNOWN)), "9101/tcp (a metrics port)"),
    ],
)
def test_unknown_cidr_and_prefix_list_sources_name_their_guarded_ports(args, named):
    assert_violation("preview-unknowns", args, named, "not judged yet")


def test_unknown_source_off_the_guarded_ports_is_named_plainly():
    assert violations("preview-unknowns", sg(tcp(443, UNKNOWN))) == [
        "sg: unknown until the update runs: ingress[0].cidrBlocks[0] (source not judged). They are judged once known."
    ]


def test_unknown_security_group_sources_are_left_to_stack_policies():
    assert_no_violation(
        "preview-unknowns",
        ingress_rule(ipProtocol="tcp", fromPort=5000, toPort=5000, referencedSecurityGroupId=UNKNOWN),
    )


def test_descriptions_are_advisory_per_rule():
    entry = {"protocol": "tcp", "fromPort": 80, "toPort": 80, "cidrBlocks": ["0.0.0.0/0", "::/0"]}
    assert violations("ingress-rule-described", sg(entry)) == [
        "sg ingress[0]: has no description. Fix: say what the rule is for."
    ]
    assert_no_violation("ingress-rule-described", sg(tcp(80, "0.0.0.0/0")))


def test_role_tags_on_groups_firewalls_and_hosts():
    assert_violation("role-tagged", sg(tags={"Name": "x"}), "tags lack `kumomta-role: mta|proxy`")
    assert_violation("role-tagged", firewall(labels={"kumomta-role": "web"}), "found 'web'")
    assert_no_violation("role-tagged", sg(tags={"kumomta-role": "proxy"}))
    assert_no_violation("role-tagged", resource("hcloud:index/server:Server", "s", labels={"kumomta-role": "mta"}))
    assert_no_violation("role-tagged", sg(tags=UNKNOWN))


def test_every_policy_has_a_description():
    assert all(policy.description for policy in POLICIES.values())
