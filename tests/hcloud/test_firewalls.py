"""The guide's port matrix as Hetzner cloud firewalls, written from the guide and not from the table.

On Hetzner the SOCKS5 path (5000, MTA -> proxy) runs over the private network, which cloud firewalls
never see, so it has no cloud rule at all; every other row of the guide is here, in and out.
"""

import pulumi
import pytest

from tests.hcloud.common import DEPLOY_CIDR, FIREWALL, MONITORING, PING8, RESOLVERS, SERVER, STACK, firewall_rules
from tests.stacks import run

ANY = frozenset({"0.0.0.0/0"})

MTA_GUIDE = {
    ("in", "tcp", 80, ANY),  # ACME HTTP challenge and redirect, from the internet
    ("in", "tcp", 443, frozenset({PING8})),  # injection and metrics via Nginx, from PING8
    ("out", "tcp", 443, frozenset({PING8})),  # webhooks to PING8
    ("out", "udp", 53, RESOLVERS),
    ("out", "tcp", 53, RESOLVERS),
}
PROXY_GUIDE = {
    ("out", "tcp", 25, ANY),  # SMTP to recipient MX
    ("out", "udp", 53, RESOLVERS),
    ("out", "tcp", 53, RESOLVERS),
}
PACKAGES = {("out", "tcp", 80, ANY), ("out", "tcp", 443, ANY)}
NTP = {("out", "udp", 123, ANY)}  # a firewall with out-rules would otherwise drop clock sync
METRICS = {("in", "tcp", 9101, frozenset({MONITORING}))}
# The day-2 channel: `pulumi up` pushes each host's configuration over SSH from deployCidrs.
DEPLOY = {("in", "tcp", 22, frozenset({DEPLOY_CIDR}))}


def _sets(result) -> dict[str, set[tuple]]:
    rules = firewall_rules(result)
    for role, listed in rules.items():
        assert len(listed) == len(set(listed)), f"{role}: a rule is listed twice"
    return {role: set(listed) for role, listed in rules.items()}


def test_prod_hcloud_has_exactly_the_guides_public_rules_plus_package_egress_and_metrics():
    result = run(STACK)
    assert len(result.of_type(FIREWALL)) == 2
    assert _sets(result) == {
        "mta": MTA_GUIDE | PACKAGES | NTP | DEPLOY,
        "proxy": PROXY_GUIDE | PACKAGES | NTP | METRICS | DEPLOY,
    }


def test_without_package_egress_only_the_guide_remains():
    assert _sets(run(STACK, packageEgress=False)) == {
        "mta": MTA_GUIDE | NTP | DEPLOY,
        "proxy": PROXY_GUIDE | NTP | METRICS | DEPLOY,
    }


def test_ntp_sources_can_be_narrowed_but_never_switched_off():
    narrowed = _sets(run(STACK, ntpCidrs=["192.0.2.123/32"]))
    assert ("out", "udp", 123, frozenset({"192.0.2.123/32"})) in narrowed["mta"]
    with pytest.raises(pulumi.RunError, match=r"kumomta:ntpCidrs: \[\] would leave Hetzner hosts without a time"):
        run(STACK, ntpCidrs=[])


@pytest.mark.parametrize("package_egress", [True, False])
def test_both_roles_have_out_rules_so_outbound_is_default_deny(package_egress):
    rules = _sets(run(STACK, packageEgress=package_egress))
    assert {role for role, listed in rules.items() if any(r[0] == "out" for r in listed)} == {"mta", "proxy"}


@pytest.mark.parametrize(
    "overrides",
    [{}, {"ipv6": True}, {"mtaHosts": ["mta1", "mta2", "mta3"], "proxyHosts": ["px1", "px2", "px3", "px4"]}],
    ids=["prod", "ipv6", "fleet"],
)
def test_no_cloud_rule_names_the_socks5_port(overrides):
    rules = _sets(run(STACK, **overrides))
    assert [r for listed in rules.values() for r in listed if r[2] == 5000] == []


def test_ipv6_opens_the_public_rows_on_both_families_only():
    plain, both = _sets(run(STACK)), _sets(run(STACK, ipv6=True))
    v6 = {(d, p, port) for role in both for d, p, port, ips in both[role] if "::/0" in ips}
    assert v6 == {("in", "tcp", 80), ("out", "tcp", 25), ("out", "tcp", 80), ("out", "tcp", 443), ("out", "udp", 123)}
    # The resolvers gain Hetzner's IPv6 pair; PING8 and monitoring stay as configured.
    dns = {ips for d, p, port, ips in both["mta"] if port == 53}
    assert dns == {RESOLVERS | {"2a01:4ff:ff00::add:1/128", "2a01:4ff:ff00::add:2/128"}}
    assert {r for r in both["proxy"] if r[2] == 9101} == {r for r in plain["proxy"] if r[2] == 9101}


def test_admin_networks_get_ssh_on_both_roles_and_nothing_else():
    plain, admin = _sets(run(STACK)), _sets(run(STACK, adminCidrs=["198.51.100.0/28"]))
    for role in ("mta", "proxy"):
        assert admin[role] - plain[role] == {("in", "tcp", 22, frozenset({"198.51.100.0/28"}))}


def test_a_fleet_needs_no_more_rules_than_one_pair():
    fleet = run(STACK, mtaHosts=["mta1", "mta2", "mta3"], proxyHosts=["px1", "px2", "px3", "px4"])
    assert firewall_rules(fleet) == firewall_rules(run(STACK))


def test_the_fullest_config_stays_within_hetzners_limits():
    """Hetzner Cloud API, Firewalls: 100 addresses per rule, 50 rules per firewall; Firewalls FAQ: "Have up to 500
    (effective) rules per Firewall", a rule counting once per address. Settings cap each list at 100 and refuse a
    firewall past 500; the fullest accepted config stays within all three."""
    hundred = [f"198.51.100.{i}/32" for i in range(100)]
    full = {
        "ipv6": True,
        "ping8Cidrs": hundred,
        "trustedCidrs": [f"192.0.2.{i}/32" for i in range(100)],
        "monitoringCidrs": hundred,
        "adminCidrs": [f"203.0.113.{i}/32" for i in range(100)],  # not deployCidrs' 198.51.100.30: one rule each
    }
    rules = firewall_rules(run(STACK, **full))
    assert max(len(listed) for listed in rules.values()) <= 50
    assert max(len(ips) for listed in rules.values() for *_, ips in listed) == 100
    effective = {role: sum(len(ips) for *_, ips in listed) for role, listed in rules.items()}
    assert max(effective.values()) <= 500 and max(effective.values()) > 400, effective
    # 100 resolvers more (on udp and tcp, in and out of the MTA's firewall) pass 500.
    with pytest.raises(pulumi.RunError) as caught:
        run(STACK, **full, resolverCidrs=[f"10.0.0.{i}/32" for i in range(100)])
    assert str(caught.value).startswith("kumomta:hcloud: the mta firewall would hold")
    assert "Hetzner allows 500 per firewall (Firewalls FAQ)" in str(caught.value)


def test_each_server_gets_its_roles_firewall_in_the_create_call():
    result = run(STACK, mtaHosts=["mta1", "mta2"], proxyHosts=["px1", "px2"])
    firewalls = {reg.inputs["labels"]["kumomta-role"]: reg for reg in result.of_type(FIREWALL)}
    servers = result.of_type(SERVER)
    assert len(servers) == 4
    for server in servers:
        firewall = firewalls[server.inputs["labels"]["kumomta-role"]]
        assert [int(i) for i in server.inputs["firewallIds"]] == [int(firewall.id)]
        assert firewall.urn in server.depends_on
    # Nothing attaches a firewall after the fact, and no firewall picks servers by itself.
    assert not result.of_type("hcloud:index/firewallAttachment:FirewallAttachment")
    assert not any(reg.inputs.get("applyTos") for reg in firewalls.values())
