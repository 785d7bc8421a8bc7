"""`make plan STACK=prod-hcloud`: the effective matrix read back from the Hetzner firewalls, with the
SOCKS5 path marked as private-network traffic that only the host firewall guards."""

import json

from components.matrix import Role
from tests.hcloud.common import STACK
from tests.stacks import plan, run
from tools import effective


def test_plan_of_prod_hcloud_exits_0_and_marks_the_private_network_path(tmp_path):
    out = tmp_path / "plan.json"
    done = plan("--stack", STACK, "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "  + mta-ipv4  (hcloud:index/primaryIp:PrimaryIp)  create  [protect, retain on delete]" in done.stdout
    document = json.loads(out.read_text())
    assert document["cloud"] == "hcloud"
    socks = [line for role in ("mta", "proxy") for line in document["matrix"][role] if line["port"] == "5000/tcp"]
    assert socks == [
        {
            "direction": "Outbound",
            "port": "5000/tcp",
            "source": "mta.yourdomain.com",
            "destination": "KumoProxy hosts (private network 10.43.2.0/24; host firewall only)",
            "purpose": "SOCKS5 egress path.",
        },
        {
            "direction": "Inbound",
            "port": "5000/tcp",
            "source": "KumoMTA hosts (private network 10.43.1.0/24; host firewall only)",
            "destination": "proxy.yourdomain.com",
            "purpose": "SOCKS5 proxy listener.",
        },
    ]


def test_the_effective_matrix_lists_every_firewall_address_as_its_own_line():
    lines = effective.lines(run(STACK))
    proxy = {(line.direction, line.port, line.source, line.destination) for line in lines[Role.PROXY]}
    assert proxy == {
        (
            "Inbound",
            "5000/tcp",
            "KumoMTA hosts (private network 10.43.1.0/24; host firewall only)",
            "proxy.yourdomain.com",
        ),
        ("Inbound", "9101/tcp", "198.51.100.20/32", "proxy.yourdomain.com"),
        ("Inbound", "22/tcp", "198.51.100.30/32", "proxy.yourdomain.com"),
        ("Outbound", "25/tcp", "proxy.yourdomain.com", "0.0.0.0/0"),
        ("Outbound", "53/udp,tcp", "proxy.yourdomain.com", "185.12.64.1/32"),
        ("Outbound", "53/udp,tcp", "proxy.yourdomain.com", "185.12.64.2/32"),
        ("Outbound", "80/tcp", "proxy.yourdomain.com", "0.0.0.0/0"),
        ("Outbound", "123/udp", "proxy.yourdomain.com", "0.0.0.0/0"),
        ("Outbound", "443/tcp", "proxy.yourdomain.com", "0.0.0.0/0"),
    }
