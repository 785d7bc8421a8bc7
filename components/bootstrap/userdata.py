"""The cloud-config of each role: packages, files, and the first-boot commands that tie them together.

Files are written after cloud-init's package install (`defer`), so no Ubuntu package overwrites
them; the kumomta package, installed by `runcmd` from its own repository, keeps an existing
`init.lua`. `runcmd` applies the host firewall first, so the rest of the bootstrap already runs
under the rules the host keeps.
"""

import base64
import gzip
from collections.abc import Sequence

import yaml

from components.bootstrap import firewall, kumo, layout, nginx, scripts
from components.bootstrap.peers import InlineToken, ProxyTarget, SsmToken
from components.bootstrap.render import template
from components.matrix import Role
from components.settings import Settings

# What each cloud accepts, before any base64 of the API. An MTA's plain text is near AWS's limit.
USER_DATA_LIMITS = {"aws": 16 * 1024, "hcloud": 32 * 1024}

# Where a fresh spool volume shows up: Nitro NVMe and Xen names on AWS, the SCSI id on Hetzner.
# Only a blank one is formatted (an unlabelled ext4 one is just labelled); afterwards the label finds it.
SPOOL_DEVICES = {
    "aws": ("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_*", "/dev/xvdf"),
    "hcloud": ("/dev/disk/by-id/scsi-0HC_Volume_*",),
}

# KumoMTA's documented repository setup for Ubuntu 22.04; it publishes no packages for 24.04.
_KUMOMTA_REPO = "https://openrepo.kumomta.com"
INSTALL_KUMOMTA = (
    f"curl -fsSL {_KUMOMTA_REPO}/kumomta-ubuntu-22/public.gpg | gpg --yes --dearmor -o /usr/share/keyrings/kumomta.gpg",
    "chmod 644 /usr/share/keyrings/kumomta.gpg",
    f"curl -fsSL {_KUMOMTA_REPO}/files/kumomta-ubuntu22.list -o /etc/apt/sources.list.d/kumomta.list",
    "apt-get update -q",
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q kumomta",
)
# The resolvers first, then the firewall that allows only them: every later step already runs as the host will.
_NETWORK = (
    f"{layout.SBIN}/kumomta-resolver /run/systemd/network /etc/systemd/network",
    "nft -f /etc/nftables.conf",
    "systemctl enable nftables.service",
)
_BASE_PACKAGES = ["nftables", "curl", "gnupg", "ca-certificates"]


def mta_user_data(
    settings: Settings,
    label: str,
    proxies: Sequence[ProxyTarget],
    token: SsmToken | InlineToken,
) -> str:
    """First boot of an MTA: kumod behind Nginx, its spool volume, the token, the host firewall."""
    fqdn = settings.fqdn(label)
    files = [
        _file("/etc/nftables.conf", firewall.ruleset(Role.MTA, settings, fqdn, {Role.PROXY: _ips(proxies)})),
        *_resolver(settings),
        *_scripts("kumomta-spool", "kumomta-spool-grow", "kumomta-tls-placeholder", "kumomta-cert-deploy"),
        _file(layout.NGINX_SITE, nginx.site(fqdn, ipv6=settings.ipv6)),
        _file(layout.POLICY, kumo.mta_policy(fqdn, proxies)),
        _file("/etc/systemd/system/kumomta.service.d/spool.conf",
              template("kumomta-spool.conf", spool_dir=layout.SPOOL_DIR)),
        _file("/etc/systemd/system/kumomta-acme.service", template(
            "kumomta-acme.service", fqdn=fqdn, acme_root=layout.ACME_ROOT, sbin=layout.SBIN, tls_dir=layout.TLS_DIR)),
        _file("/etc/systemd/system/kumomta-acme.timer", template("kumomta-acme.timer", fqdn=fqdn)),
        _file("/etc/systemd/system/kumomta-spool-grow.service",
              template("kumomta-spool-grow.service", spool_dir=layout.SPOOL_DIR, sbin=layout.SBIN)),
        _file("/etc/systemd/system/kumomta-spool-grow.timer", template("kumomta-spool-grow.timer")),
    ]  # fmt: skip
    packages = [*_BASE_PACKAGES, "nginx", "certbot"]
    if isinstance(token, InlineToken):
        files.append(_file(layout.TOKEN_MAP, nginx.token_map_line(token.value), "0600"))
        fetch_token = []
    else:
        packages.append("awscli")  # Ubuntu 22.04's own package; the snap would need the Snap Store too.
        files += [
            _file(layout.TOKEN_MAP, "# Written at boot by kumomta-token; until then every request is 401.\n", "0600"),
            *_scripts("kumomta-token"),
            _file("/etc/systemd/system/kumomta-token.service", _token_unit(token)),
        ]
        fetch_token = ["systemctl enable --now kumomta-token.service"]
    spool = " ".join(
        [f"{layout.SBIN}/kumomta-spool", layout.SPOOL_LABEL, layout.SPOOL_DIR, "/etc/fstab"]
        + [f"'{glob}'" for glob in SPOOL_DEVICES[settings.cloud]]
    )
    commands = [
        *_NETWORK,
        spool,
        *INSTALL_KUMOMTA,
        # The package makes these kumod's only if they are missing, and write_files made them first (as root),
        # so kumod could not write its node id there.
        f"install -d -o kumod -g kumod -m 0755 {layout.KUMO_ETC} {layout.KUMO_ETC}/policy",
        # Not used here, and its stock policy listens on every address.
        "systemctl disable --now kumo-tsa-daemon.service",
        f"chown kumod:kumod {layout.SPOOL_DIR} && chmod 2770 {layout.SPOOL_DIR}",
        f"install -d {layout.DKIM_DIR} && chown kumod:kumod {layout.DKIM_DIR} && chmod 0700 {layout.DKIM_DIR}",
        "systemctl daemon-reload",
        "systemctl restart kumomta.service",
        "rm -f /etc/nginx/sites-enabled/default",
        f"install -d -m 0755 {layout.ACME_ROOT}",
        f"{layout.SBIN}/kumomta-tls-placeholder {layout.TLS_DIR} {fqdn}",
        *fetch_token,
        "systemctl restart nginx.service",
        "systemctl enable --now kumomta-acme.timer",
        "systemctl enable --now kumomta-spool-grow.timer",
    ]
    return _cloud_config(settings, f"KumoMTA host {fqdn}", fqdn, packages, files, commands)


def proxy_user_data(settings: Settings, label: str, mta_sources: Sequence[str]) -> str:
    """First boot of a proxy: KumoProxy as a hardened unit, the host firewall with 5000 for `mta_sources` only."""
    fqdn = settings.fqdn(label)
    files = [
        _file("/etc/nftables.conf", firewall.ruleset(Role.PROXY, settings, fqdn, {Role.MTA: list(mta_sources)})),
        *_resolver(settings),
        *_scripts("kumoproxy-address"),
        _file(layout.PROXY_POLICY, kumo.proxy_policy(fqdn, settings)),
        _file("/etc/systemd/system/kumoproxy.service", kumo.proxy_unit()),
    ]
    commands = [
        *_NETWORK,
        *INSTALL_KUMOMTA,
        # The package enables kumod and the TSA daemon; a proxy host runs neither.
        "systemctl disable --now kumomta.service kumo-tsa-daemon.service",
        f"{layout.SBIN}/kumoproxy-address {settings.cloud} {layout.PROXY_ENV}",
        "systemctl daemon-reload",
        "systemctl enable --now kumoproxy.service",
    ]
    return _cloud_config(settings, f"KumoProxy host {fqdn}", fqdn, _BASE_PACKAGES, files, commands)


def pack(user_data: str) -> str:
    """Gzip, then base64: AWS takes it as `user_data_base64`, Hetzner's datasource decodes it itself.

    `mtime=0` keeps the bytes, and so the plan, identical from run to run.
    """
    return base64.b64encode(gzip.compress(user_data.encode(), mtime=0)).decode()


def _token_unit(token: SsmToken) -> str:
    for value in (token.parameter, token.region):
        if not value or any(c.isspace() or c in "'\"\\;$`" for c in value):
            raise ValueError(f"{value!r} cannot be passed to kumomta-token")
    return template(
        "kumomta-token.service",
        sbin=layout.SBIN,
        region=token.region,
        parameter=token.parameter,
        token_map=layout.TOKEN_MAP,
    )


def _resolver(settings: Settings) -> list[dict]:
    """systemd-resolved asks exactly the resolvers the firewalls allow."""
    servers = " ".join(str(net.network_address) for net in settings.resolvers)
    return [_file(layout.RESOLVED_CONF, template("resolved.conf", servers=servers)), *_scripts("kumomta-resolver")]


def _ips(proxies: Sequence[ProxyTarget]) -> list[str]:
    return [p.connect_ip for p in proxies]


def _file(path: str, content: str, permissions: str = "0644") -> dict:
    return {"path": path, "content": content, "permissions": permissions, "owner": "root:root", "defer": True}


def _scripts(*names: str) -> list[dict]:
    return [_file(f"{layout.SBIN}/{name}", scripts.script(name), "0755") for name in names]


def _cloud_config(
    settings: Settings, title: str, fqdn: str, packages: list[str], files: list[dict], commands: list[str]
) -> str:
    doc = {
        "fqdn": fqdn,
        "prefer_fqdn_over_hostname": True,
        "package_update": True,
        "packages": packages,
        "write_files": files,
        "runcmd": commands,
    }
    if settings.ntp_servers is not None:
        # chrony uses exactly the servers the firewalls let NTP reach (cloud-init cc_ntp: explicit servers
        # and no pools replace the distribution's pool).
        doc["ntp"] = {"enabled": True, "ntp_client": "chrony", "servers": settings.ntp_servers, "pools": []}
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)
    return f"#cloud-config\n# {title}, rendered by kumomta-infra.\n{body}"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the files read as files in the user data."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
