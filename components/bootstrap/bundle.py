"""What a running host enforces and uses, as one versioned document: the payload of the day-2 channel.

First boot only installs the host and its agent. Every `pulumi up` renders each host's bundle from the
settings and the fleet; AWS hosts poll the SSM parameter that holds it (`kumomta-sync`), Hetzner hosts
are handed it over SSH. On the host `kumomta-apply` validates, applies and records it, so a running host
follows the stack without being replaced. On AWS a secret file travels as its own SecureString, and the
bundle carries only its hash and the parameter's name.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from components.bootstrap import firewall, kumo, layout, nginx
from components.bootstrap.peers import DkimKey, ProxyTarget
from components.bootstrap.render import template
from components.matrix import Role
from components.settings import Settings

# Ubuntu 22.04's own pools (its /etc/chrony/chrony.conf), for hosts that may reach any NTP server.
UBUNTU_POOLS = (
    "pool ntp.ubuntu.com iburst maxsources 4",
    "pool 0.ubuntu.pool.ntp.org iburst maxsources 1",
    "pool 1.ubuntu.pool.ntp.org iburst maxsources 1",
    "pool 2.ubuntu.pool.ntp.org iburst maxsources 2",
)


@dataclass(frozen=True)
class File:
    path: str
    content: str = field(repr=False)
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    parameter: str | None = None
    """AWS: the SecureString holding this secret file; the bundle parameter then carries only its hash."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content.encode()).hexdigest()


@dataclass(frozen=True)
class Secret:
    """A secret file's content, and where an AWS host fetches it (None on Hetzner: it rides in the push)."""

    content: str = field(repr=False)
    parameter: str | None = None


@dataclass(frozen=True)
class Bundle:
    host: str
    role: Role
    files: tuple[File, ...]
    owns: tuple[str, ...] = ()
    """Directories whose files the bundle lists entirely: kumomta-apply removes any other file there."""

    @property
    def version(self) -> str:
        """Changes exactly when something the host would write changes; secrets count by their hash."""
        listing = [(f.path, f.mode, f.owner, f.group, f.sha256) for f in sorted(self.files, key=lambda f: f.path)]
        canonical = json.dumps([self.host, self.role.value, sorted(self.owns), listing])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def manifest(self) -> dict[str, str]:
        """Each file's SHA-256: what changed, in a form that can be shown (a secret counts by its hash)."""
        return {f.path: f.sha256 for f in self.files}

    def document(self, inline_secrets: bool) -> dict:
        """What kumomta-apply reads; without `inline_secrets` a secret file is named, not carried."""
        files = []
        for f in self.files:
            entry = {"path": f.path, "mode": f.mode, "owner": f.owner, "group": f.group, "sha256": f.sha256}
            if f.parameter is None or inline_secrets:
                entry["content"] = f.content
            else:
                entry["parameter"] = f.parameter
            files.append(entry)
        return {
            "format": 1,
            "host": self.host,
            "role": self.role.value,
            "version": self.version,
            "owns": list(self.owns),
            "files": files,
        }

    def json(self, inline_secrets: bool) -> str:
        return json.dumps(self.document(inline_secrets), sort_keys=True, separators=(",", ":"))


def host_network(settings: Settings, role: Role, fqdn: str, peers: Sequence[str]) -> list[File]:
    """The host firewall and the resolver and time sources it allows: on every host, at first boot too.

    `peers` is the subnet of the other role: the MTAs reach 5000 on the proxy subnet, the proxies admit
    it from the MTA subnet, so a host's firewall does not change when the fleet does.
    """
    other = Role.PROXY if role == Role.MTA else Role.MTA
    servers = " ".join(str(net.network_address) for net in settings.resolvers)
    return [
        File(layout.FIREWALL, firewall.ruleset(role, settings, fqdn, {other: list(peers)})),
        File(layout.RESOLVED_CONF, template("resolved.conf", servers=servers)),
        File(layout.CHRONY_CONF, chrony_conf(settings)),
    ]


def chrony_conf(settings: Settings) -> str:
    """chrony asks exactly the servers the firewalls let NTP reach, or Ubuntu's pools where any may be reached."""
    servers = settings.ntp_servers
    sources = UBUNTU_POOLS if servers is None else [f"server {server} iburst" for server in servers]
    return template("chrony.conf", sources="\n".join(sources))


def mta_bundle(
    settings: Settings,
    label: str,
    proxy_subnet: str,
    proxies: Sequence[ProxyTarget],
    bearer_map: Secret,
    dkim: Sequence[DkimKey] = (),
) -> Bundle:
    """An MTA: its network, Nginx's site and bearer map, its DKIM keys, and kumod's policy naming every proxy."""
    fqdn = settings.fqdn(label)
    files = [
        *host_network(settings, Role.MTA, fqdn, [proxy_subnet]),
        File(layout.NGINX_SITE, nginx.site(fqdn, ipv6=settings.ipv6)),
        File(layout.TOKEN_MAP, bearer_map.content, "0600", parameter=bearer_map.parameter),
        File(layout.POLICY, kumo.mta_policy(fqdn, proxies, dkim), "0644", "root", "kumod"),
        # Readable by kumod alone, outside every web root (the guide: no DKIM key on any web-served path).
        *(File(kumo.dkim_path(key), key.pem, "0600", "kumod", "kumod", key.parameter) for key in dkim),
    ]
    return Bundle(label, Role.MTA, tuple(files), owns=(f"{layout.NGINX_SECRETS}/", f"{layout.DKIM_DIR}/"))


def proxy_bundle(settings: Settings, label: str, mta_subnet: str) -> Bundle:
    """A proxy: its network and KumoProxy's policy."""
    fqdn = settings.fqdn(label)
    files = [
        *host_network(settings, Role.PROXY, fqdn, [mta_subnet]),
        File(layout.PROXY_POLICY, kumo.proxy_policy(fqdn, settings)),
    ]
    return Bundle(label, Role.PROXY, tuple(files))


def bearer_map(token: str, parameter: str | None) -> Secret:
    return Secret(nginx.token_map_line(token), parameter)
