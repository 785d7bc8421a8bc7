"""A lab host's machine: its own file system over the machine's, its processes' way in, its resolvers.

Each host has one mount namespace for its life, held by a process that sleeps in it: overlayfs over
the machine's /etc, /home, /opt, /usr/local and /var (the host's own files in the run directory,
the machine's untouched), its own /run, and iproute2's /etc/netns/<ns>/ files (resolv.conf, and the
lab's CA as the host's trust store) bound over /etc. Everything that runs on the host enters that
namespace and the host's network namespace (`enter`), so nginx, sshd, kumomta-apply and the
services all see one host, as on a real machine, and a file kumomta-apply renames into place is the
file the next reload reads.

Before its first boot the host gets the lab's image (`image`): the machine's tools, plus the lab's
`systemctl` (it asks the lab's manager, tools/lab/systemd.py) and `networkctl` (the lab's links
are static). The first boot itself is tools/lab/firstboot.py, run in the host.
"""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tools.lab.stack import Host
from tools.lab.standins import policy
from tools.lab.topology import Places

OVERLAID = ("etc", "home", "opt", "usr/local", "var")
RESOLVED_DROPIN = "/etc/systemd/resolved.conf.d/kumomta.conf"
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The kumomta package's units (KumoMTA assets/kumomta.service and assets/kumo-tsa-daemon.service, which
# assets/build-deb.sh installs under /usr/lib/systemd/system); here under /usr/local/lib/systemd/system,
# systemd's search path for local units, as /usr is the machine's.
KUMOMTA_UNIT = """[Unit]
Description=KumoMTA SMTP service
After=syslog.target network.target

[Service]
Type=simple
Restart=always
EnvironmentFile=-/opt/kumomta/etc/kumo-common.env
EnvironmentFile=-/opt/kumomta/etc/kumod.env
ExecStart=/opt/kumomta/sbin/kumod --policy /opt/kumomta/etc/policy/init.lua --user kumod
TimeoutStopSec=300

[Install]
WantedBy=multi-user.target
"""
TSA_UNIT = """[Unit]
Description=KumoMTA Traffic Shaping Automation service
After=syslog.target network.target

[Service]
Type=simple
Restart=always
ExecStart=/opt/kumomta/sbin/tsa-daemon --policy /opt/kumomta/etc/policy/tsa_init.lua
User=kumod

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class Machine:
    """Where a host's own files live on this machine, and how a process gets into the host."""

    base: Path

    @property
    def root(self) -> Path:
        """overlayfs upper directories: what the host wrote over the machine's files."""
        return self.base / "root"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def run(self) -> Path:
        """The host's /run."""
        return self.base / "run"

    @property
    def enter(self) -> Path:
        return self.base / "enter"

    @property
    def holder_pid(self) -> Path:
        return self.base / "holder.pid"

    def path(self, path: str) -> Path:
        """A path of the host as this machine sees it: the host's own file, else the machine's below it."""
        if path == "/run" or path.startswith("/run/"):
            return self.run / path[len("/run/") :]
        own = self.root / path.lstrip("/")
        if any(path.startswith(f"/{top}/") for top in OVERLAID) and own.exists():
            return own
        return Path(path)

    def prepare(self) -> None:
        for top in OVERLAID:
            (self.root / top).mkdir(parents=True, exist_ok=True)
            (self.work / top).mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)

    def holder(self, ns: str, run_dir: Path) -> str:
        """The script of the process that holds the host's mount namespace, started in its network namespace."""
        mounts = " ".join(OVERLAID)
        return f"""set -e
# Holds {ns}'s mount namespace: the host's files over the machine's, its own /run, then sleeps.
exec 3<{run_dir}
for d in {mounts}; do
  mount -t overlay kumolab -o "lowerdir=/$d,upperdir={self.root}/$d,workdir={self.work}/$d" "/$d"
done
for f in /etc/netns/{ns}/*; do
  [ -e "$f" ] && mount --bind "$f" "/etc/${{f##*/}}"
done
mount --bind {self.run} /run
mkdir -p {run_dir}
mount -c --bind /proc/self/fd/3 {run_dir}
exec 3<&-
touch {self.base}/mounted
exec sleep 86400
"""

    def enter_script(self) -> str:
        return f"""#!/bin/sh
# Runs a command on the lab host: in its network and mount namespaces (see tools/lab/hosts.py).
exec nsenter --target "$(cat {self.holder_pid})" --mount --net -- "$@"
"""


def image(machine: Machine, label: str, python: str, root: Path, socket_path: Path, journal: Path) -> None:
    """The lab's own tools in the host before its first boot (the rest of the image is the machine's)."""
    sbin = machine.root / "usr/local/sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    tools = {
        "systemctl": f"""#!/bin/sh
# The lab's systemctl: the host's units, run by the lab's manager (tools/lab/systemd.py).
PYTHONPATH={root} exec {python} -m tools.lab.standins.systemctl {socket_path} {label} "$@"
""",
        "networkctl": """#!/bin/sh
# The lab's networkctl: the lab's links are static; systemd-networkd is not modelled.
exit 0
""",
        # kumomta-sync runs kumomta-apply through this when the lab fires the timer, to time it.
        "kumolab-timed-apply": f"""#!/bin/sh
start=$(date +%s.%N)
/usr/local/sbin/kumomta-apply "$@"
code=$?
printf '{{"event": "apply", "args": "%s", "start": %s, "end": %s, "code": %s}}\\n' "$*" "$start" "$(date +%s.%N)" \
  "$code" >> {journal}
exit $code
""",
    }
    for name, text in tools.items():
        (sbin / name).write_text(text)
        (sbin / name).chmod(0o755)


def package_files(label: str, python: str, root: Path, sbin: Path | None, journals: Path) -> list[dict]:
    """What the kumomta package installs that the lab needs: its units, and kumod and proxy-server (the
    stand-ins, or KUMOMTA_SBIN's real binaries)."""
    if sbin:
        kumod = f'#!/bin/sh\nexec {sbin}/kumod "$@"\n'
        proxy = f'#!/bin/sh\nexec {sbin}/proxy-server "$@"\n'
    else:
        env = f"PYTHONPATH={root} exec {python} -m"
        kumod = f'#!/bin/sh\n{env} tools.lab.standins.kumod {journals}/{label}-kumod.jsonl "$@"\n'
        proxy = f'#!/bin/sh\n{env} tools.lab.standins.kumoproxy {journals}/{label}-kumoproxy.jsonl "$@"\n'
    return [
        {"path": "/usr/local/lib/systemd/system/kumomta.service", "content": KUMOMTA_UNIT, "mode": "0644"},
        {"path": "/usr/local/lib/systemd/system/kumo-tsa-daemon.service", "content": TSA_UNIT, "mode": "0644"},
        {"path": "/opt/kumomta/sbin/kumod", "content": kumod, "mode": "0755"},
        {"path": "/opt/kumomta/sbin/proxy-server", "content": proxy, "mode": "0755"},
    ]


def resolvers(host: Host, places: Places, dropin: str | None) -> tuple[list[str], str]:
    """The nameservers the host uses, and where they come from.

    systemd-resolved uses the global `DNS=` of its drop-in and, beside them, the servers DHCP hands
    each link (unless the network config turns that off); without a drop-in only DHCP's.
    """
    configured = []
    for line in (dropin or "").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "DNS":
            configured += [v.split("#")[0].split("%")[0] for v in value.split()]
    if not configured:
        return list(places.dhcp_resolvers), "the cloud's DHCP (no resolver configuration)"
    dhcp_off = any(_turns_off_dhcp_dns(host, path) for path in host.files)
    servers = configured if dhcp_off else [*configured, *places.dhcp_resolvers]
    where = "resolved drop-in" + ("" if dhcp_off else " and the cloud's DHCP")
    return list(dict.fromkeys(servers)), where


def resolv_conf(label: str, servers: list[str], origin: str) -> str:
    lines = [f"# {label}: {origin}", *(f"nameserver {s}" for s in servers), "options timeout:1 attempts:1"]
    return "\n".join(lines) + "\n"


def _turns_off_dhcp_dns(host: Host, path: str) -> bool:
    """A networkd drop-in with `[DHCPv4] UseDNS=no`, or a script writing one that the boot runs."""
    text = host.files[path].content
    if not re.search(r"\[DHCPv4\]\W+UseDNS=no", text):
        return False
    return path.startswith("/etc/systemd/network/") or any(line.split()[0] == path for line in host.runcmd if line)


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


def proxy_ready(host: Host, env_text: str) -> list[tuple[str, str, int]]:
    """Where the host's KumoProxy listens once up: its SOCKS5 and, when set, its metrics listener."""
    listeners = policy.proxy_listeners(host.files[file_named(host, "/proxy/proxy.lua")].content,
                                       policy.env_file(env_text))  # fmt: skip
    ready = [("tcp", *policy.split_host_port(listeners["socks"]))]
    if listeners["metrics"]:
        ready.append(("tcp", *policy.split_host_port(listeners["metrics"])))
    return ready


def kumod_ready(host: Host) -> list[tuple[str, str, int]]:
    listen = policy.kumod_listen(host.files[file_named(host, "/policy/init.lua")].content)
    return [("tcp", *policy.split_host_port(listen))]
