"""The effective port matrix: read back from the firewall resources the program registered.

The plan shows what the program actually declares, not what the matrix table intends, so a
backend that drops or adds a rule shows up in review. Loopback rows have no resource and are
taken from the table, marked as such.
"""

from dataclasses import asdict, dataclass

from components import matrix
from components.matrix import Role
from tools.mockrun import Run

_AWS_RULES = {
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "in",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "out",
}


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
    for role, direction, protocol, port, peer, purpose in _aws_rules(run):
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
