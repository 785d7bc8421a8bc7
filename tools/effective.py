"""The effective port matrix: read back from the firewall resources the program registered.

The plan shows what the program actually declares, not what the matrix table intends, so a
backend that drops or adds a rule shows up in review. Loopback rows have no resource and are
taken from the table, marked as such. So are the host-group rows on Hetzner, whose traffic runs
over the private network the registered servers share, where no cloud firewall filters it.
"""

from dataclasses import asdict, dataclass

from components import matrix
from components.matrix import Role
from tools.mockrun import Run

_AWS_RULES = {
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "in",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "out",
}
_HCLOUD_FIREWALL = "hcloud:index/firewall:Firewall"
_HCLOUD_SUBNET = "hcloud:index/networkSubnet:NetworkSubnet"
_HCLOUD_SERVER = "hcloud:index/server:Server"


@dataclass(frozen=True)
class Line:
    """One row of the guide's table layout."""

    direction: str
    port: str
    source: str
    destination: str
    purpose: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def lines(run: Run) -> dict[Role, list[Line]]:
    """Per role, the rules as registered, one line per port and peer with protocols merged."""
    hosts = {role: _host_names(run, role) for role in Role}
    found: dict[Role, dict[tuple, list[str]]] = {role: {} for role in Role}
    for role, direction, protocol, port, peer, purpose in (*_aws_rules(run), *_hcloud_rules(run)):
        found[role].setdefault((direction, port, peer, purpose), []).append(protocol)

    out = {}
    for role in Role:
        rows = [
            # Sorted so plans are comparable; reverse gives the guide's "udp,tcp".
            _line(direction, f"{port}/{','.join(sorted(protocols, reverse=True))}", peer, hosts[role], purpose)
            for (direction, port, peer, purpose), protocols in found[role].items()
        ]
        rows += [
            _line(
                "in",
                f"{row.port}/{','.join(row.protocols)}",
                matrix.PEER_TITLES[row.peer],
                hosts[role],
                f"{row.purpose} No firewall rule: loopback only.",
            )
            for row in matrix.MATRIX
            if row.role == role and row.peer == matrix.Peer.LOOPBACK
        ]
        rows += _private_network_lines(run, role, hosts[role])
        out[role] = sorted(rows, key=_order)
    return out


def _aws_rules(run: Run):
    groups = {r.id: Role(r.inputs["tags"]["kumomta-role"]) for r in run.of_type("aws:ec2/securityGroup:SecurityGroup")}
    for reg in run.registrations:
        direction = _AWS_RULES.get(reg.type)
        if direction is None:
            continue
        i = reg.inputs
        referenced = i.get("referencedSecurityGroupId")
        peer = f"{matrix.ROLE_TITLES[groups[referenced]]}s (security group)" if referenced else None
        peer = peer or i.get("cidrIpv4") or i.get("cidrIpv6") or i.get("prefixListId")
        yield groups[i["securityGroupId"]], direction, i["ipProtocol"], _port(i), peer, i.get("description", "")


def _hcloud_rules(run: Run):
    """A Hetzner rule holds many addresses; one line per address, as on AWS."""
    for firewall in run.of_type(_HCLOUD_FIREWALL):
        role = Role(firewall.inputs["labels"]["kumomta-role"])
        for rule in firewall.inputs.get("rules", []):
            addresses = rule.get("sourceIps") if rule["direction"] == "in" else rule.get("destinationIps")
            for address in addresses or []:
                yield (
                    role,
                    rule["direction"],
                    rule["protocol"],
                    rule.get("port", "any"),
                    address,
                    rule.get("description", ""),
                )


def _private_network_lines(run: Run, role: Role, hosts: str) -> list[Line]:
    """Host-group rows where both roles' servers share a Hetzner private network: no cloud rule exists,
    the host firewall is the only guard, and the plan says so."""
    ranges = _private_ranges(run)
    out = []
    for row in matrix.MATRIX:
        peer_role = matrix.HOST_GROUPS.get(row.peer)
        if row.role != role or peer_role is None or not (ranges.get(role) and ranges.get(peer_role)):
            continue
        peer = f"{matrix.ROLE_TITLES[peer_role]}s (private network {ranges[peer_role]}; host firewall only)"
        out.append(_line(row.direction, f"{row.port}/{','.join(row.protocols)}", peer, hosts, row.purpose))
    return out


def _private_ranges(run: Run) -> dict[Role, str]:
    """Per role, the private subnets its servers are attached to."""
    subnets = {reg.id: reg.inputs["ipRange"] for reg in run.of_type(_HCLOUD_SUBNET)}
    found: dict[Role, set[str]] = {}
    for server in run.of_type(_HCLOUD_SERVER):
        role = Role(server.inputs["labels"]["kumomta-role"])
        for attachment in server.inputs.get("networks", []):
            found.setdefault(role, set()).add(subnets[attachment["subnetId"]])
    return {role: ", ".join(sorted(ranges)) for role, ranges in found.items()}


def _port(inputs: dict) -> str:
    low, high = int(inputs.get("fromPort", -1)), int(inputs.get("toPort", -1))
    return str(low) if low == high else f"{low}-{high}"


def _host_names(run: Run, role: Role) -> str:
    names = [h["fqdn"] for h in (run.outputs.get("hosts") or {}).values() if h.get("role") == role.value]
    return ", ".join(names) or matrix.ROLE_TITLES[role]


def _line(direction: str, port: str, peer: str, hosts: str, purpose: str) -> Line:
    if direction == "in":
        return Line("Inbound", port, peer, hosts, purpose)
    return Line("Outbound", port, hosts, peer, purpose)


def _order(line: Line) -> tuple:
    return (line.direction != "Inbound", int(line.port.split("/")[0].split("-")[0]), line.source, line.destination)
