"""The lab's shape, derived from the plan as data (no root needed): what each cloud would show a host."""

import dataclasses
import ipaddress

import pytest

from tools.lab import cloudfw, topology
from tools.lab.stack import plan


@pytest.fixture(scope="module")
def aws():
    return plan("prod")


@pytest.fixture(scope="module")
def hcloud():
    return plan("prod-hcloud")


def ifaces(topo, node):
    return [i for link in topo.links for n, i in (link.a, link.b) if n == node]


def test_an_aws_host_sees_only_its_private_address_and_the_gateway_maps_its_elastic_ip(aws):
    # EC2: the Elastic IP is NAT at the internet gateway; the instance's interface holds the private address.
    topo = topology.build(aws, "klt")
    for host in aws.hosts:
        (iface,) = ifaces(topo, host.label)
        assert iface.addresses == (f"{host.private_ip}/{host.subnet.prefixlen}",)
        igw = next(n for n in topo.nodes if n.name == "igw")
        assert host.public_ip in igw.local
        assert f"ip daddr {host.public_ip} dnat to {host.private_ip}" in igw.nft
        assert f"ip saddr {host.private_ip} snat to {host.public_ip}" in igw.nft


def test_a_hetzner_host_has_its_public_address_on_its_interface_and_the_private_network_beside_it(hcloud):
    topo = topology.build(hcloud, "klt")
    for host in hcloud.hosts:
        by_name = {i.name: i for i in ifaces(topo, host.label)}
        assert by_name["eth0"].addresses == (f"{host.public_ip}/32",)
        assert by_name["ens10"].addresses == (f"{host.private_ip}/32",)
    # The private network has no way to the internet: no link joins it to the public side.
    assert not [link for link in topo.links if {link.a[0], link.b[0]} == {"private", "igw"}]


@pytest.mark.parametrize("stack", ["prod", "prod-hcloud"])
def test_no_route_leaves_the_lab(stack):
    p = plan(stack)
    topo = topology.build(p, "klt")
    lab_addresses = {a.split("/")[0] for link in topo.links for _, i in (link.a, link.b) for a in i.addresses}
    lab_addresses |= {a for n in topo.nodes for a in n.local}
    for node in topo.nodes:
        for route in node.routes:
            if route.dst == "default":
                assert node.name not in ("igw", "private"), f"{node.name} routes beyond the lab"
                continue
            net = ipaddress.ip_network(route.dst)
            assert net.num_addresses > 1 or str(net.network_address) in lab_addresses, f"{node.name}: {route}"


def test_interface_names_fit_linux_for_the_longest_labels():
    # An MTA's FQDN is its certificate's CN, 64 characters at most (settings): 49 + ".yourdomain.com".
    long = ["m" * 49, "m" * 48 + "x"]
    p = plan("prod", {"kumomta:mtaHosts": long, "kumomta:proxyHosts": ["p" * 63]})
    topo = topology.build(p, "klt")
    for node in topo.nodes:
        names = [i.name for i in ifaces(topo, node.name)]
        assert all(len(n) <= 15 for n in names)  # IFNAMSIZ - 1
        assert len(names) == len(set(names))


def test_the_aws_router_filters_with_every_registered_rule_of_each_hosts_groups(aws):
    topo = topology.build(aws, "klt")
    vpc = next(n for n in topo.nodes if n.name == "vpc")
    for rule in aws.rules:
        if rule.peer is None or ":" not in (rule.peer or ""):
            assert f'comment "{rule.name}"' in vpc.nft
    # Amazon DNS (VPC base + 2 and 169.254.169.253), metadata and time sync are never filtered.
    assert "10.42.0.2, 169.254.169.253, 169.254.169.254, 169.254.169.123" in vpc.nft


def test_a_hetzner_firewall_without_out_rules_allows_all_outbound(hcloud):
    # https://docs.hetzner.com/cloud/firewalls/overview/: outbound is open unless an out-rule exists.
    no_out = dataclasses.replace(hcloud, rules=tuple(r for r in hcloud.rules if r.direction == "in"))
    text = cloudfw.ruleset(no_out, {h.label: f"v{n}" for n, h in enumerate(hcloud.hosts)}, ())
    assert text.count('return comment "no out-rule: Hetzner allows all outbound"') == len(hcloud.hosts)
    with_out = cloudfw.ruleset(hcloud, {h.label: f"v{n}" for n, h in enumerate(hcloud.hosts)}, ())
    assert "no out-rule" not in with_out


def test_the_resolver_answers_at_the_clouds_real_addresses(aws, hcloud):
    assert set(topology.build(aws, "klt").places.resolvers) >= {"10.42.0.2", "169.254.169.253"}
    assert set(topology.build(hcloud, "klt").places.resolvers) >= {"185.12.64.1", "185.12.64.2"}


def test_a_replan_that_adds_a_host_keeps_every_other_hosts_interfaces(aws):
    # engine.update builds only what changed: a host's router interface is named after its label alone.
    bigger = topology.build(plan("prod", {"kumomta:proxyHosts": ["proxy", "proxy2"]}), "klt")
    before = topology.build(aws, "klt")
    assert {k: v for k, v in bigger.interfaces.items() if k in before.interfaces} == before.interfaces
    assert set(before.links) <= set(bigger.links)


def test_pulumi_up_runs_from_the_deploy_node_at_deploy_cidrs_on_hetzner_and_ssm_is_out_on_the_internet(aws, hcloud):
    hc = topology.build(hcloud, "klt").places
    assert hc.deploy == "198.51.100.30" and hc.ssm is None  # Pulumi.prod-hcloud.yaml deployCidrs: 198.51.100.30/32
    places = topology.build(aws, "klt").places
    assert places.deploy == topology.DEPLOY_STRANGER  # AWS has no deployCidrs: its hosts pull from SSM
    internet = next(link for link in topology.build(aws, "klt").links if link.a[0] == "internet")
    assert f"{places.ssm}/32" in internet.a[1].addresses
