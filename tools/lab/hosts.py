"""What each host runs, read from its user data: its files, its resolver, and the boot steps this machine can run.

A host's files (cloud-init `write_files`) are laid out under the run directory and mounted over
the machine's /etc, /opt, /usr/local and /var with overlayfs, in a private mount namespace of
the host's processes only (`enter`), so nginx, the scripts and the daemons find every rendered
file at its rendered path and nothing of the machine changes. Two things go through iproute2's
/etc/netns/<ns>/ instead, so that every process in the namespace (also `make verify`'s inside
checks) sees them: resolv.conf (the resolvers the host uses) and /etc/ssl (the lab's CA as the
host's trust store).

`BOOT` says which `runcmd` lines the lab runs and how; the others (package installs, the spool
volume, certbot's timer) are listed in the report as not run here.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tools.lab.stack import Host
from tools.lab.standins import policy
from tools.lab.topology import Places

OVERLAID = ("etc", "opt", "usr/local", "var")
RESOLVED_DROPINS = re.compile(r"^/etc/systemd/resolved\.conf\.d/[^/]+\.conf$")

# runcmd line -> what the lab does with it. "run": the line itself, on the host (`enter`).
BOOT = (
    (re.compile(r"^nft -f /etc/nftables\.conf$"), "firewall"),
    (re.compile(r"^/usr/local/sbin/kumomta-tls-placeholder "), "run"),
    (re.compile(r"^/usr/local/sbin/kumoproxy-address "), "run"),
    (re.compile(r"systemctl enable --now kumomta-token\.service"), "token"),
    (re.compile(r"systemctl restart kumomta\.service"), "kumod"),
    (re.compile(r"systemctl restart nginx\.service"), "nginx"),
    (re.compile(r"systemctl enable --now kumoproxy\.service"), "kumoproxy"),
)


@dataclass(frozen=True)
class Step:
    line: str
    action: str | None
    """None: not run here."""


def steps(host: Host) -> list[Step]:
    out = []
    for line in host.runcmd:
        action = next((a for pattern, a in BOOT if pattern.search(line)), None)
        out.append(Step(line, action))
    return out


def resolvers(host: Host, places: Places) -> tuple[list[str], str]:
    """The nameservers the host uses, and where they come from.

    systemd-resolved uses the global `DNS=` of its drop-ins and, beside them, the servers DHCP
    hands each link (unless the network config turns that off); without a drop-in only DHCP's.
    """
    configured = []
    for path, f in host.files.items():
        if RESOLVED_DROPINS.match(path):
            for line in f.content.splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "DNS":
                    configured += [v.split("#")[0].split("%")[0] for v in value.split()]
    if not configured:
        return list(places.dhcp_resolvers), "the cloud's DHCP (no resolver configuration in the user data)"
    dhcp_off = any(_turns_off_dhcp_dns(host, path) for path in host.files)
    servers = configured if dhcp_off else [*configured, *places.dhcp_resolvers]
    where = "resolved drop-in" + ("" if dhcp_off else " and the cloud's DHCP")
    return list(dict.fromkeys(servers)), where


def _turns_off_dhcp_dns(host: Host, path: str) -> bool:
    """A networkd drop-in with `[DHCPv4] UseDNS=no`, or a script writing one that the boot runs."""
    text = host.files[path].content
    if not re.search(r"\[DHCPv4\]\W+UseDNS=no", text):
        return False
    return path.startswith("/etc/systemd/network/") or any(line.split()[0] == path for line in host.runcmd if line)


def lay_out(host: Host, root: Path, work: Path) -> None:
    """The host's files under `root`, with their permissions; overlayfs work dirs under `work`."""
    for top in OVERLAID:
        (root / top).mkdir(parents=True, exist_ok=True)
        (work / top).mkdir(parents=True, exist_ok=True)
    for path, f in host.files.items():
        dest = root / path.lstrip("/")
        if not any(path.startswith(f"/{top}/") for top in OVERLAID):
            raise ValueError(f"{host.label}: {path} is outside the overlaid {OVERLAID}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f.content)
        dest.chmod(int(f.permissions, 8))


def enter_script(ns: str, root: Path, work: Path) -> str:
    mounts = " ".join(OVERLAID)
    return f"""#!/bin/sh
# Runs a command as on the lab host: in its network namespace, its files over the machine's (overlayfs),
# in a mount namespace of its own that dies with the command.
exec ip netns exec {ns} unshare --mount --propagation private /bin/sh -c '
set -e
for d in {mounts}; do
  mount -t overlay kumolab -o "lowerdir=/$d,upperdir={root}/$d,workdir={work}/$d" "/$d"
done
for f in /etc/netns/{ns}/*; do
  [ -e "$f" ] && mount --bind "$f" "/etc/${{f##*/}}"
done
exec "$@"' enter "$@"
"""


def trust_store(directory: Path, ca_pem: str) -> None:
    """/etc/ssl as the host sees it: the lab's CA as the system bundle, the machine's openssl.cnf."""
    certs = directory / "ssl" / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "ca-certificates.crt").write_text(ca_pem)
    if Path("/etc/ssl/openssl.cnf").exists():
        shutil.copy("/etc/ssl/openssl.cnf", directory / "ssl" / "openssl.cnf")


def file_named(host: Host, suffix: str) -> str:
    found = [p for p in host.files if p.endswith(suffix)]
    if len(found) != 1:
        raise ValueError(f"{host.label}: expected one file ending in {suffix}, found {found}")
    return found[0]


def nginx_ports(host: Host) -> list[int]:
    site = host.files[file_named(host, "/etc/nginx/conf.d/kumomta.conf")].content
    return sorted({int(p) for p in re.findall(r"^\s*listen\s+(\d+)", site, re.MULTILINE)})


def kumoproxy_unit(host: Host) -> tuple[str, str, list[str]]:
    """(EnvironmentFile, policy path, ExecStart argv) of the rendered kumoproxy.service."""
    unit = host.files[file_named(host, "/kumoproxy.service")].content
    env_file = (policy.unit_value(unit, "EnvironmentFile") or "").lstrip("-")
    argv = (policy.unit_value(unit, "ExecStart") or "").split()
    if "--proxy-config" not in argv:
        raise ValueError(f"{host.label}: kumoproxy.service starts no --proxy-config")
    return env_file, argv[argv.index("--proxy-config") + 1], argv


def token_unit(host: Host) -> list[str]:
    unit = host.files[file_named(host, "/kumomta-token.service")].content
    return (policy.unit_value(unit, "ExecStart") or "").split()
