"""Each host asks exactly the resolvers and time servers its firewalls let it reach.

The bug this pins: on AWS the VPC's DHCP options hand out the Amazon DNS server at the VPC base + 2
("Amazon DNS server", https://docs.aws.amazon.com/vpc/latest/userguide/AmazonDNS-concepts.html) and
systemd-resolved used it, while the host firewall allowed 53 only to 169.254.169.253: every step
after the firewall lost DNS. The resolver configuration is now rendered from the same settings as
both firewalls, and DHCP's servers are switched off.
"""

import configparser
import ipaddress
import os
import re
import subprocess

import pytest
import yaml

from components.bootstrap import firewall
from components.matrix import Role
from components.settings import ConfigError
from tests.bootstrap.conftest import settings
from tests.bootstrap.nginx_harness import install
from tests.bootstrap.test_userdata import _render


def _files(text: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}


def _resolved(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read_string(_files(text)["/etc/systemd/resolved.conf.d/kumomta.conf"])
    return parser


def _dns_allowed(ruleset: str) -> set[str]:
    """Destinations of the host firewall's 53/udp accepts."""
    return {m.group(1) for m in re.finditer(r"daddr (\S+) udp dport 53 accept", ruleset)}


CASES = [
    ("aws", {}, ["169.254.169.253"]),
    ("aws", {"resolverCidrs": ["10.42.0.2/32"]}, ["10.42.0.2"]),
    ("hcloud", {}, ["185.12.64.1", "185.12.64.2"]),
    ("hcloud", {"ipv6": True}, ["185.12.64.1", "185.12.64.2", "2a01:4ff:ff00::add:1", "2a01:4ff:ff00::add:2"]),
    ("hcloud", {"resolverCidrs": ["10.43.0.53/32", "2001:db8::53/128"]}, ["10.43.0.53", "2001:db8::53"]),
]


@pytest.mark.parametrize(("cloud", "overrides", "servers"), CASES)
@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_systemd_resolved_asks_exactly_the_resolvers_the_host_firewall_allows(cloud, overrides, servers, role):
    text = _render(role, cloud, **overrides)
    conf = _resolved(text)["Resolve"]
    # resolved.conf(5): DNS= a space-separated list; Domains=~. routes every lookup to them; an empty
    # FallbackDNS= means never the compiled-in public fallbacks.
    assert conf["DNS"].split() == servers
    assert conf["Domains"] == "~."
    assert conf["FallbackDNS"] == ""
    ruleset = _files(text)["/etc/nftables.conf"]
    assert _dns_allowed(ruleset) == {str(ipaddress.ip_network(s)) for s in servers}


def test_dhcp_and_router_advertisements_add_no_resolver(tmp_path):
    """systemd.network(5): UseDNS= in [DHCPv4], [DHCPv6] and [IPv6AcceptRA] decides whether servers they hand
    out are used; a drop-in `<name>.network.d/*.conf` in /etc/systemd/network applies to the netplan-generated
    /run/systemd/network/<name>.network."""
    script = install(tmp_path / "sbin", "kumomta-resolver")
    networks, dropins, fakes = tmp_path / "run", tmp_path / "etc", tmp_path / "bin"
    networks.mkdir()
    for name in ("10-netplan-ens5.network", "10-netplan-ens6.network"):
        (networks / name).write_text("[Match]\nName=ens5\n[Network]\nDHCP=ipv4\n")
    fakes.mkdir()
    for tool in ("networkctl", "systemctl"):
        (fakes / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{fakes}/calls"\n')
        (fakes / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{fakes}:{os.environ['PATH']}"}
    for _ in range(2):  # safe to run again
        done = subprocess.run([script, networks, dropins], env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    for name in ("10-netplan-ens5.network", "10-netplan-ens6.network"):
        dropin = configparser.ConfigParser()
        dropin.read(dropins / f"{name}.d" / "kumomta-dns.conf")
        assert {section: dropin[section]["UseDNS"] for section in dropin.sections()} == {
            "DHCPv4": "no",
            "DHCPv6": "no",
            "IPv6AcceptRA": "no",
        }
    assert (fakes / "calls").read_text().splitlines()[:2] == [
        "networkctl reload",
        "systemctl restart systemd-resolved.service",
    ]


def test_resolvers_and_ntp_servers_are_single_addresses():
    for key, value in (("resolverCidrs", ["10.42.0.0/24"]), ("ntpCidrs", ["192.0.2.0/28"])):
        with pytest.raises(ConfigError, match=f"kumomta:{key}.*is a range; the hosts are configured to use"):
            settings("aws", **{key: value})
    with pytest.raises(ConfigError, match=r"kumomta:ntpCidrs: mixes 0\.0\.0\.0/0"):
        settings("hcloud", ntpCidrs=["0.0.0.0/0", "192.0.2.1/32"])


def _ntp(text: str) -> dict | None:
    return yaml.safe_load(text).get("ntp")


def test_aws_hosts_use_amazon_time_sync_unless_ntp_servers_are_named():
    """Amazon Time Sync at 169.254.169.123 is link-local and never filtered by security groups
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/set-time.html); `ntpCidrs: []` must not leave
    an AWS host without a clock, as it did."""
    amazon = {"enabled": True, "ntp_client": "chrony", "servers": ["169.254.169.123"], "pools": []}
    for overrides in ({}, {"ntpCidrs": []}):
        text = _render("proxy", "aws", **overrides)
        assert _ntp(text) == amazon
        assert "ip daddr 169.254.169.123 udp dport 123 accept" in _files(text)["/etc/nftables.conf"]
    named = _render("proxy", "aws", ntpCidrs=["192.0.2.123/32"])
    assert _ntp(named) == {**amazon, "servers": ["192.0.2.123"]}
    assert "169.254.169.123" not in _files(named)["/etc/nftables.conf"]
    assert "ip daddr 192.0.2.123/32 udp dport 123 accept" in _files(named)["/etc/nftables.conf"]


def test_hetzner_hosts_keep_the_distribution_pool_only_while_any_ntp_server_is_allowed():
    assert _ntp(_render("mta", "hcloud")) is None
    assert "ip daddr 0.0.0.0/0 udp dport 123 accept" in _files(_render("mta", "hcloud"))["/etc/nftables.conf"]
    named = _render("mta", "hcloud", ntpCidrs=["192.0.2.123/32", "192.0.2.124/32"])
    assert _ntp(named)["servers"] == ["192.0.2.123", "192.0.2.124"]
    assert _ntp(named)["pools"] == []
    with pytest.raises(ConfigError, match=r"kumomta:ntpCidrs: \[\] would leave Hetzner hosts without a time source"):
        settings("hcloud", ntpCidrs=[])


def test_the_proxy_firewall_matches_too():
    s = settings("aws", resolverCidrs=["10.42.0.2/32"])
    ruleset = firewall.ruleset(Role.PROXY, s, "proxy.example.com", {Role.MTA: ["10.42.1.0/24"]})
    assert _dns_allowed(ruleset) == {"10.42.0.2/32"}
