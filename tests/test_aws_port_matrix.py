"""The guide's port matrix on AWS, rule by rule, written from the guide and not from the table.

If the matrix table or the AWS backend drifts from the guide, these sets stop matching.
"""

from tests.stacks import RULE_TYPES, SG, run, sg_rules

PING8 = "203.0.113.10/32"  # Pulumi.prod.yaml
RESOLVER = "169.254.169.253/32"  # the Amazon-provided DNS server
MONITORING = "10.42.200.0/24"

MTA_GUIDE = {
    ("in", "tcp", 80, "0.0.0.0/0"),  # ACME + redirect, from the internet
    ("in", "tcp", 443, PING8),  # injection and metrics via Nginx, from PING8
    ("out", "tcp", 5000, "sg:proxy"),  # SOCKS5 to KumoProxy only
    ("out", "tcp", 443, PING8),  # webhooks to PING8
    ("out", "udp", 53, RESOLVER),
    ("out", "tcp", 53, RESOLVER),
}
PROXY_GUIDE = {
    ("in", "tcp", 5000, "sg:mta"),  # SOCKS5 from the KumoMTA hosts only
    ("out", "tcp", 25, "0.0.0.0/0"),  # SMTP to recipient MX
    ("out", "udp", 53, RESOLVER),
    ("out", "tcp", 53, RESOLVER),
}
PACKAGES = {("out", "tcp", 80, "0.0.0.0/0"), ("out", "tcp", 443, "0.0.0.0/0")}
METRICS = {("in", "tcp", 9101, MONITORING)}


def test_prod_has_exactly_the_guides_rules_plus_package_egress_and_metrics():
    rules = sg_rules(run())
    assert rules["mta"] == MTA_GUIDE | PACKAGES
    assert rules["proxy"] == PROXY_GUIDE | PACKAGES | METRICS


def test_without_package_egress_only_the_guide_remains():
    rules = sg_rules(run(packageEgress=False))
    assert rules["mta"] == MTA_GUIDE
    assert rules["proxy"] == PROXY_GUIDE | METRICS


def test_no_monitoring_networks_means_no_metrics_rule_at_all():
    rules = sg_rules(run(monitoringCidrs=[]))
    assert not any(port == 9101 for _, _, port, _ in rules["proxy"])


def test_metrics_port_follows_config():
    rules = sg_rules(run(proxyMetricsPort=9464))
    assert ("in", "tcp", 9464, MONITORING) in rules["proxy"]
    assert not any(port == 9101 for _, _, port, _ in rules["proxy"])


def test_admin_networks_get_ssh_and_nothing_else():
    plain = sg_rules(run())
    rules = sg_rules(run(adminCidrs=["198.51.100.0/28"]))
    for role in ("mta", "proxy"):
        assert rules[role] - plain[role] == {("in", "tcp", 22, "198.51.100.0/28")}
    assert not any(port == 22 for role in plain for _, _, port, _ in plain[role])


def test_trusted_networks_reach_443_on_the_mta_only():
    plain = sg_rules(run())
    rules = sg_rules(run(trustedCidrs=["192.0.2.0/24"]))
    assert rules["mta"] - plain["mta"] == {("in", "tcp", 443, "192.0.2.0/24")}
    assert rules["proxy"] == plain["proxy"]


def test_resolvers_follow_config():
    rules = sg_rules(run(resolverCidrs=["10.42.0.2/32"]))
    assert {("out", "udp", 53, "10.42.0.2/32"), ("out", "tcp", 53, "10.42.0.2/32")} <= rules["mta"]
    assert not any(peer == RESOLVER for role in rules for *_, peer in rules[role])


def test_ipv6_opens_the_public_rows_on_both_families_only():
    rules = sg_rules(run(ipv6=True))
    v6 = {rule for role in rules for rule in rules[role] if rule[3] == "::/0"}
    assert {(d, p, port) for d, p, port, _ in v6} == {
        ("in", "tcp", 80),
        ("out", "tcp", 25),
        ("out", "tcp", 80),
        ("out", "tcp", 443),
    }


def test_port_8000_is_never_in_any_rule():
    for config in ({}, {"adminCidrs": ["198.51.100.0/28"]}, {"ipv6": True}):
        rules = sg_rules(run(**config))
        assert not any(port == 8000 for role in rules for _, _, port, _ in rules[role])


def test_security_groups_have_no_inline_rules_and_no_legacy_rule_resources():
    result = run()
    for group in result.of_type(SG):
        assert "ingress" not in group.inputs and "egress" not in group.inputs
    assert not result.of_type("aws:ec2/securityGroupRule:SecurityGroupRule")
    rule_types = {r.type for r in result.registrations if "ecurityGroup" in r.type and "Rule" in r.type}
    assert rule_types == set(RULE_TYPES)


def test_the_vpc_default_security_group_is_adopted_and_emptied():
    (default,) = run().of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert "ingress" not in default.inputs and "egress" not in default.inputs


def test_a_fleet_of_three_mtas_and_four_proxies_needs_no_more_rules():
    small = run()
    fleet = run(mtaHosts=["mta1", "mta2", "mta3"], proxyHosts=["px1", "px2", "px3", "px4"])
    assert sg_rules(fleet) == sg_rules(small)
    count = sum(1 for r in fleet.registrations if r.type in RULE_TYPES)
    assert count == sum(1 for r in small.registrations if r.type in RULE_TYPES)

    # Every MTA sits in the group that the proxies' 5000 rule admits, every proxy in the one MTAs may reach.
    groups = {r.inputs["tags"]["kumomta-role"]: r.id for r in fleet.of_type(SG)}
    enis = fleet.of_type("aws:ec2/networkInterface:NetworkInterface")
    assert len(enis) == 7
    for eni in enis:
        role = eni.inputs["tags"]["kumomta-role"]
        assert eni.inputs["securityGroups"] == [groups[role]]
    assert {(h["role"], h["fqdn"]) for h in fleet.outputs["hosts"].values()} == {
        *(("mta", f"mta{i}.yourdomain.com") for i in (1, 2, 3)),
        *(("proxy", f"px{i}.yourdomain.com") for i in (1, 2, 3, 4)),
    }
