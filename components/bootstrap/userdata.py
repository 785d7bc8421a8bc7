"""First boot of each role: install the host, its agent and a safe starting state; the bundle does the rest.

What a host runs and enforces day to day (firewall, resolvers, Nginx, the kumod and KumoProxy
policies, secrets) is its bundle (`bundle.py`), delivered by the day-2 channel at first boot and after
every `pulumi up`. The user data only gets the host that far, and holds no secret on either cloud
(Hetzner's carries the host's own SSH host key, which pins the channel). Its size does not grow with the
fleet. Files are written after cloud-init's package install (`defer`), so no package overwrites them;
`runcmd` applies the host firewall first, so the rest of the bootstrap already runs under its rules.
"""

import base64
import gzip

import yaml

from components.bootstrap import bundle, kumo, layout, scripts
from components.bootstrap.peers import SshChannel, SsmChannel
from components.bootstrap.render import template
from components.matrix import Role
from components.settings import Settings

# What each cloud accepts: AWS counts the raw bytes before the API's base64 (here: the gzip), Hetzner the
# text of the API field (here: the base64 of the gzip).
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
# The resolvers and clock first, then the firewall that allows only them: every later step already runs as
# the host will.
_NETWORK = (
    f"{layout.SBIN}/kumomta-resolver /run/systemd/network /etc/systemd/network",
    "systemctl restart chrony.service",
    f"nft -f {layout.FIREWALL}",
    "systemctl enable nftables.service",
)
_BASE_PACKAGES = ["nftables", "chrony", "curl", "gnupg", "ca-certificates"]
# Hetzner: `pulumi up` connects as this user, whose only command is kumomta-apply (waiting for first boot).
SYNC_USER = "kumomta-sync"
SYNC_COMMAND = f"{layout.SBIN}/kumomta-apply --wait-boot 1200"
# AWS: the secrets live on tmpfs, so no disk, snapshot or image of the root volume carries them.
_SECRET_MOUNT_OPTIONS = "mode=0700,size=1m,nosuid,nodev,noexec"


def first_boot(settings: Settings, label: str, role: Role, channel: SsmChannel | SshChannel, peer_subnet: str) -> str:
    """The cloud-config of one host: the same on every host of a role, but for its name and channel."""
    fqdn = settings.fqdn(label)
    state = layout.STATE_DIR[settings.cloud]
    files = [
        *(_file(f.path, f.content) for f in bundle.host_network(settings, role, fqdn, [peer_subnet])),
        *_scripts("kumomta-resolver", "kumomta-apply"),
    ]
    packages = list(_BASE_PACKAGES)
    if role == Role.MTA:
        packages += ["nginx", "certbot"]
        files += _mta_files(settings, fqdn, state)
        commands = [*_NETWORK, *_mta_commands(settings, fqdn)]
    else:
        files += [
            *_scripts("kumoproxy-address"),
            _file("/etc/systemd/system/kumoproxy.service", kumo.proxy_unit()),
            _applied_first("kumoproxy.service", state),
        ]  # fmt: skip
        commands = [
            *_NETWORK,
            *INSTALL_KUMOMTA,
            # The package enables kumod and the TSA daemon; a proxy host runs neither.
            "systemctl disable --now kumomta.service kumo-tsa-daemon.service",
            f"{layout.SBIN}/kumoproxy-address {settings.cloud} {layout.PROXY_ENV}",
            "systemctl daemon-reload",
            "systemctl enable kumoproxy.service",
        ]
    doc = {"fqdn": fqdn, "prefer_fqdn_over_hostname": True, "package_update": True}
    if isinstance(channel, SsmChannel):
        packages.append("python3-boto3")  # kumomta-sync reads SSM with the instance role
        files += [
            *_scripts("kumomta-sync"),
            _file("/etc/systemd/system/kumomta-sync.service", template("kumomta-sync.service", state_dir=state,
                  sbin=layout.SBIN, region=channel.region, parameter=channel.parameter)),
            _file("/etc/systemd/system/kumomta-sync.timer", template("kumomta-sync.timer")),
        ]  # fmt: skip
        if role == Role.MTA:
            doc["mounts"] = [["tmpfs", layout.NGINX_SECRETS, "tmpfs", _SECRET_MOUNT_OPTIONS, "0", "0"]]
        # The first bundle now, waiting for the role's credentials to propagate; then the timer follows `up`.
        commands += [
            "systemctl daemon-reload",
            f"KUMOMTA_STATE={state} {layout.SBIN}/kumomta-sync {channel.region} {channel.parameter} --wait 900",
            "systemctl enable --now kumomta-sync.timer",
        ]
    else:
        doc.update(_ssh_channel(channel))
    doc.update(packages=packages, write_files=files, runcmd=commands)
    title = "KumoMTA host" if role == Role.MTA else "KumoProxy host"
    return f"#cloud-config\n# {title} {fqdn}, rendered by kumomta-infra.\n" + yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, width=1000
    )


def _mta_files(settings: Settings, fqdn: str, state: str) -> list[dict]:
    return [
        *_scripts("kumomta-spool", "kumomta-spool-grow", "kumomta-tls-placeholder", "kumomta-cert-deploy"),
        _file("/etc/systemd/system/kumomta.service.d/spool.conf",
              template("kumomta-spool.conf", spool_dir=layout.SPOOL_DIR)),
        _applied_first("kumomta.service", state),
        _applied_first("nginx.service", state),
        _file("/etc/systemd/system/kumomta-acme.service", template(
            "kumomta-acme.service", fqdn=fqdn, acme_root=layout.ACME_ROOT, sbin=layout.SBIN, tls_dir=layout.TLS_DIR)),
        _file("/etc/systemd/system/kumomta-acme.timer", template("kumomta-acme.timer", fqdn=fqdn)),
        _file("/etc/systemd/system/kumomta-spool-grow.service",
              template("kumomta-spool-grow.service", spool_dir=layout.SPOOL_DIR, sbin=layout.SBIN)),
        _file("/etc/systemd/system/kumomta-spool-grow.timer", template("kumomta-spool-grow.timer")),
    ]  # fmt: skip


def _mta_commands(settings: Settings, fqdn: str) -> list[str]:
    spool = " ".join(
        [f"{layout.SBIN}/kumomta-spool", layout.SPOOL_LABEL, layout.SPOOL_DIR, "/etc/fstab"]
        + [f"'{glob}'" for glob in SPOOL_DEVICES[settings.cloud]]
    )
    return [
        spool,
        *INSTALL_KUMOMTA,
        # The package makes these kumod's only if they are missing, and write_files made them first (as root),
        # so kumod could not write its node id there.
        f"install -d -o kumod -g kumod -m 0755 {layout.KUMO_ETC} {layout.KUMO_ETC}/policy",
        # Not used here, and its stock policy listens on every address.
        "systemctl disable --now kumo-tsa-daemon.service",
        f"chown kumod:kumod {layout.SPOOL_DIR} && chmod 2770 {layout.SPOOL_DIR}",
        f"install -d {layout.DKIM_DIR} && chown kumod:kumod {layout.DKIM_DIR} && chmod 0700 {layout.DKIM_DIR}",
        *_dkim_tmpfs(settings),
        # kumod and Nginx start when the first bundle is applied (kumomta-apply), not before.
        "systemctl daemon-reload",
        "rm -f /etc/nginx/sites-enabled/default",
        f"install -d -m 0755 {layout.ACME_ROOT}",
        f"{layout.SBIN}/kumomta-tls-placeholder {layout.TLS_DIR} {fqdn}",
        "systemctl enable --now kumomta-acme.timer",
        "systemctl enable --now kumomta-spool-grow.timer",
    ]


def _dkim_tmpfs(settings: Settings) -> list[str]:
    """AWS: the DKIM keys on tmpfs too, owned by kumod, whose uid exists only once the package is installed."""
    if settings.cloud != "aws":
        return []
    options = f"{_SECRET_MOUNT_OPTIONS},uid=$(id -u kumod),gid=$(id -g kumod)"
    return [
        f'echo "tmpfs {layout.DKIM_DIR} tmpfs {options} 0 0" >> /etc/fstab',
        f"mount {layout.DKIM_DIR}",
    ]


def _ssh_channel(channel: SshChannel) -> dict:
    """The user `pulumi up` pushes bundles as, able to run nothing but kumomta-apply, and a pinned host key."""
    return {
        "users": [
            "default",
            {
                "name": SYNC_USER,
                "system": True,
                "shell": "/bin/sh",
                "lock_passwd": True,
                "ssh_authorized_keys": [f'restrict,command="sudo -n {SYNC_COMMAND}" {channel.deploy_key.strip()}'],
                "sudo": f"ALL=(root) NOPASSWD: {SYNC_COMMAND}",
            },
        ],
        # Only the stack's host key, so the deployer's pinned key is the only one the host can offer.
        "ssh_keys": {"ed25519_private": channel.host_private_key, "ed25519_public": channel.host_public_key.strip()},
        # Keys of these types are generated only where none exists (cloud-init cc_ssh); ours does.
        "ssh_genkeytypes": ["ed25519"],
        "ssh_deletekeys": True,
    }


def _applied_first(unit: str, state: str) -> dict:
    return _file(f"/etc/systemd/system/{unit}.d/kumomta-applied.conf",
                 template("applied-first.conf", applied=f"{state}/applied.json"))  # fmt: skip


def pack(user_data: str) -> str:
    """Gzip, then base64: AWS takes it as `user_data_base64`, and cloud-init's Hetzner datasource decodes
    base64 user data itself, "possibly gzipped" (cloudinit/sources/DataSourceHetzner.py), so both clouds take
    about a fifth of the plain size. cloud-init unpacks gzip on its own.

    `mtime=0` keeps the bytes, and so the plan, identical from run to run.
    """
    return base64.b64encode(gzip.compress(user_data.encode(), mtime=0)).decode()


def _file(path: str, content: str, permissions: str = "0644") -> dict:
    return {"path": path, "content": content, "permissions": permissions, "owner": "root:root", "defer": True}


def _scripts(*names: str) -> list[dict]:
    return [_file(f"{layout.SBIN}/{name}", scripts.script(name), "0755") for name in names]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the files read as files in the user data."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
