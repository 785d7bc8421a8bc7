"""Readers for the hcloud resources a mock run registered, shared by the hcloud tests."""

from tools.mockrun import Registration, Run

FIREWALL = "hcloud:index/firewall:Firewall"
SERVER = "hcloud:index/server:Server"
PRIMARY_IP = "hcloud:index/primaryIp:PrimaryIp"
RDNS = "hcloud:index/rdns:Rdns"
VOLUME = "hcloud:index/volume:Volume"
ATTACHMENT = "hcloud:index/volumeAttachment:VolumeAttachment"
RRSET = "hcloud:index/zoneRrset:ZoneRrset"

# The stack file the tests read, and the values of it they check against.
STACK = "prod-hcloud"
PING8 = "203.0.113.10/32"
MONITORING = "198.51.100.20/32"
DEPLOY_CIDR = "198.51.100.30/32"
RESOLVERS = frozenset({"185.12.64.1/32", "185.12.64.2/32"})  # Hetzner's recursive resolvers


def role_of(reg: Registration) -> str:
    return reg.inputs["labels"]["kumomta-role"]


def firewall_rules(run: Run) -> dict[str, list[tuple]]:
    """Per role: (direction, protocol, port, addresses) for each rule of its cloud firewall."""
    found: dict[str, list[tuple]] = {}
    for firewall in run.of_type(FIREWALL):
        rules = found.setdefault(role_of(firewall), [])
        for rule in firewall.inputs.get("rules", []):
            key = "sourceIps" if rule["direction"] == "in" else "destinationIps"
            assert set(rule) <= {"direction", "protocol", "port", key, "description"}, rule
            rules.append((rule["direction"], rule["protocol"], int(rule["port"]), frozenset(rule[key])))
    return found


def host_of(reg: Registration) -> str:
    """The label of the host a per-host resource is parented to."""
    return reg.parent.rsplit("::", 1)[-1]


def per_host(run: Run, type_: str) -> dict[str, list[Registration]]:
    out: dict[str, list[Registration]] = {}
    for reg in run.of_type(type_):
        out.setdefault(host_of(reg), []).append(reg)
    return out
