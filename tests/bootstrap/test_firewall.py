"""The host firewall: `nft -c` accepts it, and its accepts are the matrix rules, nothing more."""

import ipaddress
import re
import subprocess

import pytest

from components import matrix
from components.bootstrap.firewall import PLUMBING, ruleset
from components.matrix import Role
from tests.bootstrap.conftest import MTA_SOURCES, PROXIES, need, settings

_ACCEPT = re.compile(
    r"^(?P<family>ip6?) (?P<where>saddr|daddr) (?P<addrs>\{ [^}]+ \}|\S+) (?P<proto>tcp|udp) "
    r'dport (?P<port>\d+) accept comment "(?P<name>[^"]+)"$'
)
_VARIANTS = [
    {},
    {"monitoringCidrs": ["10.9.0.0/24"], "ipv6": True},
    {"packageEgress": False, "adminCidrs": [], "trustedCidrs": []},
]


def _render(cloud: str, role: Role, **overrides) -> tuple[str, object, dict]:
    s = settings(cloud, **overrides)
    groups = {Role.MTA: MTA_SOURCES[cloud], Role.PROXY: [p.connect_ip for p in PROXIES[cloud]]}
    return ruleset(role, s, f"{role}.example.com", groups), s, groups


def _chains(text: str) -> dict[str, list[str]]:
    """Rule lines per chain, comments dropped."""
    chains, current = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("chain "):
            current = chains.setdefault(line.split()[1], [])
        elif current is not None and line and not line.startswith("#") and line != "}":
            current.append(line)
    return chains


@pytest.mark.parametrize("overrides", _VARIANTS)
@pytest.mark.parametrize("role", list(Role))
def test_nft_accepts_the_rule_set(tmp_path, cloud, role, overrides):
    need("nft")
    path = tmp_path / "nftables.conf"
    path.write_text(_render(cloud, role, **overrides)[0])
    checked = subprocess.run(["nft", "-c", "-f", str(path)], check=False, capture_output=True, text=True)
    if checked.returncode != 0 and "Operation not permitted" in checked.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN to open a netlink socket; this sandbox does not grant it")
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("overrides", _VARIANTS)
@pytest.mark.parametrize("role", list(Role))
def test_accepts_equal_the_matrix_rules(cloud, role, overrides):
    text, s, groups = _render(cloud, role, **overrides)
    chains = _chains(text)
    found = set()
    for chain, direction in (("input", "in"), ("output", "out")):
        for line in chains[chain]:
            m = _ACCEPT.match(line)
            if m is None:
                continue
            addrs = m["addrs"].strip("{} ").split(", ")
            assert m["where"] == ("saddr" if direction == "in" else "daddr"), line
            for addr in addrs:
                net = ipaddress.ip_network(addr)
                assert m["family"] == ("ip" if net.version == 4 else "ip6"), line
                found.add((m["name"], direction, m["proto"], int(m["port"]), net))
    expected = set()
    for rule in matrix.rules(role, s):
        nets = [rule.cidr] if rule.group is None else [ipaddress.ip_network(a) for a in groups[rule.group]]
        expected |= {(rule.name, rule.row.direction, rule.protocol, rule.port, n) for n in nets}
    assert found == expected


@pytest.mark.parametrize("role", list(Role))
def test_only_the_framework_and_plumbing_accept_anything_else(cloud, role):
    text = _render(cloud, role, ipv6=True)[0]
    plumbing = {f"{p.match} {p.verdict}" for p in PLUMBING}
    frame = {"ct state established,related accept", "ct state invalid drop", 'iifname "lo" accept',
             'oifname "lo" accept'}  # fmt: skip
    chains = _chains(text)
    for chain in ("input", "output"):
        hooks, *rules = chains[chain]
        assert hooks == f"type filter hook {chain} priority filter; policy drop;"
        assert rules[:3] == ["ct state established,related accept", "ct state invalid drop",
                             f'{"iif" if chain == "input" else "oif"}name "lo" accept']  # fmt: skip
        for line in rules:
            assert _ACCEPT.match(line) or line in plumbing or line in frame, line
    assert chains["forward"] == ["type filter hook forward priority filter; policy drop;"]


def test_socks_port_is_open_on_the_proxy_only_to_the_given_mta_sources():
    text, _, _ = _render("hcloud", Role.PROXY)
    lines = [line.strip() for line in text.splitlines() if "dport 5000" in line]
    assert lines == ['ip saddr { 10.0.1.2/32, 10.0.1.3/32 } tcp dport 5000 accept comment "in-tcp-5000-mta-hosts"']


def test_mta_reaches_5000_only_on_the_proxies_and_8000_is_never_named():
    text, _, _ = _render("aws", Role.MTA)
    lines = [line.strip() for line in text.splitlines() if "dport 5000" in line]
    assert lines == ['ip daddr 10.42.2.10/32 tcp dport 5000 accept comment "out-tcp-5000-proxy-hosts"']
    assert "8000" not in text


def test_an_empty_host_group_opens_nothing():
    s = settings("aws")
    assert "dport 5000" not in ruleset(Role.PROXY, s, "proxy.example.com", {})


def test_ipv6_plumbing_only_with_ipv6():
    assert "icmpv6" not in _render("aws", Role.MTA)[0]
    assert "icmpv6" in _render("aws", Role.MTA, ipv6=True)[0]


def test_only_root_reaches_the_metadata_service():
    for cloud in ("aws", "hcloud"):
        for role in Role:
            lines = [line.strip() for line in _render(cloud, role)[0].splitlines() if "169.254.169.254" in line]
            assert lines == [
                "ip daddr 169.254.169.254 tcp dport 80 meta skuid 0 accept",
                "ip daddr 169.254.169.254 drop",
            ]
            text = _render(cloud, role)[0]
            assert text.index("ip daddr 169.254.169.254 drop") < text.index('comment "out-tcp-80-internet')
