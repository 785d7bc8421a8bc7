"""What the drift audit reads from a cloud, reduced to one small model both clouds share.

A live rule is one direction, protocol, port (range) and peer, which is what a matrix `Rule`
boils down to once its peer is named (`expected`). Turning both sides into the same model first makes the
comparison a set difference, whatever the cloud's own shape (one source per AWS rule, up to
100 IPs per Hetzner rule).
"""

import ipaddress
from dataclasses import dataclass

from components import matrix
from components.matrix import Role


class ApiFailure(Exception):
    """The cloud API answered with an error; the text is the row's reason."""


@dataclass(frozen=True, order=True)
class LiveRule:
    direction: str
    protocol: str
    ports: str
    """"443", a range "80-85", or "all"."""
    peer: str
    """A normalised CIDR, the guide's name of a host group, or the cloud's name for anything else."""

    def describe(self) -> str:
        """The rule in the guide's words, e.g. `8000/tcp in from 0.0.0.0/0` or `5000/tcp out to KumoProxy hosts`."""
        where = "from" if self.direction == "in" else "to"
        return f"{self.ports}/{self.protocol} {self.direction} {where} {self.peer}"


@dataclass(frozen=True)
class Firewall:
    ident: str
    """The cloud's ID (and name, if any), for the report."""
    rules: frozenset[LiveRule]


def cidr(text: str) -> str:
    """One spelling per network, so `2a01:4ff:ff00:0::add:1/128` and `2a01:4ff:ff00::add:1/128` match."""
    return str(ipaddress.ip_network(text.strip(), strict=False))


def host_group(role: Role) -> str:
    """How the guide names the hosts of a role as a peer, e.g. `KumoProxy hosts`."""
    (peer,) = [peer for peer, group in matrix.HOST_GROUPS.items() if group == role]
    return matrix.PEER_TITLES[peer]


def expected(rule: matrix.Rule) -> LiveRule:
    peer = cidr(str(rule.cidr)) if rule.cidr is not None else matrix.PEER_TITLES[rule.row.peer]
    return LiveRule(rule.row.direction, rule.protocol, str(rule.port), peer)
