"""The port matrix of the deployment guide, as data.

`MATRIX` is the only place a firewall rule is written down. The cloud backends, the host
firewall, the README tables, the offline plan and the tests all read it, so a rule that is
not in this table does not exist anywhere.
"""

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from components.settings import Network, Settings


class Role(StrEnum):
    MTA = "mta"
    PROXY = "proxy"


class Peer(StrEnum):
    """Who is on the other end of a rule. Each peer resolves to CIDRs or to a host group."""

    INTERNET = "internet"
    PING8 = "ping8"
    TRUSTED = "trusted"
    RESOLVER = "resolver"
    TIME = "time"
    MTA_HOSTS = "mta-hosts"
    PROXY_HOSTS = "proxy-hosts"
    MONITORING = "monitoring"
    ADMIN = "admin"
    RECIPIENT_MX = "recipient-mx"
    LOOPBACK = "loopback"


# How the guide names each peer in its tables.
PEER_TITLES = {
    Peer.INTERNET: "Public internet",
    Peer.PING8: "PING8 app",
    Peer.TRUSTED: "Trusted networks",
    Peer.RESOLVER: "Resolver",
    Peer.TIME: "Time servers",
    Peer.MTA_HOSTS: "KumoMTA hosts only",
    Peer.PROXY_HOSTS: "KumoProxy hosts",
    Peer.MONITORING: "Monitoring system only",
    Peer.ADMIN: "Admin networks",
    Peer.RECIPIENT_MX: "Recipient MX",
    Peer.LOOPBACK: "Localhost only",
}

# Peers that are the project's own hosts: backends express them as a group, not as CIDRs.
HOST_GROUPS = {Peer.MTA_HOSTS: Role.MTA, Peer.PROXY_HOSTS: Role.PROXY}

ROLE_TITLES = {Role.MTA: "KumoMTA host", Role.PROXY: "KumoProxy host"}


@dataclass(frozen=True)
class Row:
    """One line of the guide's table for one role."""

    role: Role
    direction: Literal["in", "out"]
    protocols: tuple[str, ...]
    port: int | str  # a str names the Settings field that holds the port
    peer: Peer
    purpose: str
    exposure: str
    origin: Literal["guide", "operational"] = "guide"
    when: str | None = None  # a bool Settings field that switches the row on
    note: str = ""


_TCP = ("tcp",)
_DNS = ("udp", "tcp")
_PACKAGES = "OS packages, KumoMTA repository, ACME and cloud agents."

MATRIX: tuple[Row, ...] = (
    # KumoMTA host, as the guide has it.
    Row(Role.MTA, "in", _TCP, 80, Peer.INTERNET, "ACME HTTP challenge and redirect.", "Public, limited to Nginx."),
    Row(Role.MTA, "in", _TCP, 443, Peer.PING8, "HTTPS injection and metrics via Nginx.", "Public with bearer auth."),
    Row(
        Role.MTA,
        "in",
        _TCP,
        443,
        Peer.TRUSTED,
        "HTTPS injection and metrics via Nginx.",
        "Bearer auth.",
        note="Only when trustedCidrs is set.",
    ),
    Row(
        Role.MTA,
        "in",
        _TCP,
        8000,
        Peer.LOOPBACK,
        "KumoMTA HTTP listener.",
        "Loopback only.",
        note="Bound to 127.0.0.1; no firewall rule ever names it.",
    ),
    Row(Role.MTA, "out", _TCP, 5000, Peer.PROXY_HOSTS, "SOCKS5 egress path.", "Only to trusted proxy hosts."),
    Row(Role.MTA, "out", _TCP, 443, Peer.PING8, "Webhook lifecycle events.", "PING8 app only."),
    Row(Role.MTA, "out", _DNS, 53, Peer.RESOLVER, "DNS lookups.", "Resolver only."),
    # KumoProxy host, as the guide has it.
    Row(
        Role.PROXY,
        "in",
        _TCP,
        5000,
        Peer.MTA_HOSTS,
        "SOCKS5 proxy listener.",
        "Private or firewall-restricted.",
        note="On Hetzner this path runs over the private network, which cloud firewalls do not filter; "
        "the host firewall limits it to the MTA subnet.",
    ),
    Row(Role.PROXY, "out", _TCP, 25, Peer.RECIPIENT_MX, "SMTP delivery.", "Public outbound."),
    Row(Role.PROXY, "out", _DNS, 53, Peer.RESOLVER, "DNS lookups.", "Resolver only."),
    Row(
        Role.PROXY,
        "in",
        _TCP,
        "proxy_metrics_port",
        Peer.MONITORING,
        "Proxy metrics/status.",
        "Monitoring system only.",
        note="Only when monitoringCidrs is set.",
    ),
    # What running the hosts needs beyond the guide.
    *(
        row
        for role in Role
        for row in (
            Row(
                role,
                "in",
                _TCP,
                22,
                Peer.ADMIN,
                "SSH administration.",
                "Admin networks only.",
                "operational",
                note="Only when adminCidrs is set; AWS hosts are reached through SSM Session Manager instead.",
            ),
            Row(
                role,
                "out",
                ("udp",),
                123,
                Peer.TIME,
                "Clock sync (NTP): TLS, DKIM and queue timers need a correct clock.",
                "Time servers only.",
                "operational",
                note="AWS needs no rule: security groups never filter the Amazon Time Sync Service, which AWS "
                "hosts use unless ntpCidrs names servers. On Hetzner any NTP server (the distribution's pool) "
                "unless ntpCidrs names servers.",
            ),
            Row(role, "out", _TCP, 80, Peer.INTERNET, _PACKAGES, "Public outbound.", "operational", "package_egress"),
            Row(role, "out", _TCP, 443, Peer.INTERNET, _PACKAGES, "Public outbound.", "operational", "package_egress"),
        )
    ),
)


@dataclass(frozen=True)
class Rule:
    """One protocol, one port and one peer address (or host group) of a row, ready for a backend."""

    row: Row
    protocol: str
    port: int
    cidr: Network | None  # None when the peer is a host group

    @property
    def name(self) -> str:
        """Stable resource-name suffix, so a plan diff reads as "rule X added"."""
        target = self.row.peer.value
        if self.cidr is not None:
            target += "-" + str(self.cidr).replace("/", "-").replace(":", "_")
        return f"{self.row.direction}-{self.protocol}-{self.port}-{target}"

    @property
    def group(self) -> Role | None:
        return HOST_GROUPS.get(self.row.peer)


def rows(role: Role, settings: Settings) -> list[Row]:
    """The rows that are switched on for this role under these settings, loopback included."""
    return [r for r in MATRIX if r.role == role and (r.when is None or getattr(settings, r.when))]


def port_of(row: Row, settings: Settings) -> int:
    return getattr(settings, row.port) if isinstance(row.port, str) else row.port


def peer_cidrs(peer: Peer, settings: Settings) -> list[Network]:
    """The addresses a peer stands for; empty means "no rule" (e.g. no monitoring configured)."""
    anywhere = [ipaddress.ip_network("0.0.0.0/0")]
    if settings.ipv6:
        anywhere.append(ipaddress.ip_network("::/0"))
    return {
        Peer.INTERNET: anywhere,
        Peer.RECIPIENT_MX: anywhere,
        Peer.PING8: settings.ping8_cidrs,
        Peer.TRUSTED: settings.trusted_cidrs,
        Peer.RESOLVER: settings.resolvers,
        Peer.TIME: settings.time_servers,
        Peer.MONITORING: settings.monitoring_cidrs,
        Peer.ADMIN: settings.admin_cidrs,
    }.get(peer, [])


def rules(role: Role, settings: Settings) -> list[Rule]:
    """Every firewall rule this role gets. Loopback rows produce none."""
    out = []
    for row in rows(role, settings):
        if row.peer == Peer.LOOPBACK:
            continue
        targets = [None] if row.peer in HOST_GROUPS else peer_cidrs(row.peer, settings)
        out += [Rule(row, proto, port_of(row, settings), cidr) for cidr in targets for proto in row.protocols]
    return out
