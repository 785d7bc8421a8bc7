"""The engine: turns a Topology into namespaces, veths, addresses, routes and rulesets, and back.

It knows nothing about what runs on the nodes. Everything it creates is named with the run's
prefix and recorded in the run's state file *before* it is created, so teardown (`down`) can
walk the same data backwards after a failure, an interrupt or a crash of the runner, and is
safe to run twice. Veth ends are created directly inside their namespaces; nothing of the lab
ever exists in the machine's own namespace except the run directory and /etc/netns/<ns>.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tools.lab.topology import Topology

STATE_ROOT = Path("/run/kumolab")
NETNS_ETC = Path("/etc/netns")
COMMAND_TIMEOUT = 20.0


class LabError(Exception):
    """Building the lab failed; the text says which step."""


def sh(argv: Sequence[str], input: str | None = None, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> str:
    done = subprocess.run(list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def in_ns(ns: str, argv: Sequence[str], input: str | None = None, timeout: float = COMMAND_TIMEOUT) -> str:
    return sh(["ip", "netns", "exec", ns, *argv], input=input, timeout=timeout)


def run_dir(prefix: str) -> Path:
    return STATE_ROOT / prefix


def write_state(topology: Topology, extra: dict | None = None, keep: Sequence[str] = ()) -> Path:
    """Record what this run will create, before creating it (and, while changing, what it still has)."""
    directory = run_dir(topology.prefix)
    directory.mkdir(parents=True, exist_ok=True)
    namespaces = sorted({*keep, *topology.namespaces})
    state = {"prefix": topology.prefix, "owner": os.getpid(), "namespaces": namespaces, **(extra or {})}
    (directory / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    return directory


def up(topology: Topology) -> None:
    """Namespaces, then links, then routes, then rulesets; any failure raises (the caller tears down)."""
    _build(topology, topology.nodes, topology.links, {n.name: (n.local, n.routes) for n in topology.nodes})
    for node in topology.nodes:
        if node.nft:
            load_ruleset(topology.netns(node.name), node.nft)


def update(old: Topology, new: Topology, extra: dict | None = None) -> list[str]:
    """Turn the running `old` into `new` (a re-plan): nodes and links gone are removed, new ones built,
    routes and local addresses changed, and each lab node's ruleset replaced where it changed. A host's
    own ruleset is its own to change (its bundle), so a host's node is never reloaded here. The state
    file names every namespace of both before anything is created. Returns the namespaces removed."""
    write_state(new, extra, keep=old.namespaces)
    old_nodes, new_nodes = {n.name: n for n in old.nodes}, {n.name: n for n in new.nodes}
    gone = [name for name in old_nodes if name not in new_nodes]
    for name in gone:
        ns = old.netns(name)
        _kill_all(ns)
        with contextlib.suppress(LabError, subprocess.TimeoutExpired):
            sh(["ip", "netns", "del", ns])
        shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    for link in set(old.links) - set(new.links):
        (node, iface) = link.a
        if node in new_nodes:
            with contextlib.suppress(LabError):
                sh(["ip", "-n", old.netns(node), "link", "del", iface.name])
    added = [n for name, n in new_nodes.items() if name not in old_nodes]
    batches: dict[str, list[str]] = {}
    for name, node in new_nodes.items():
        before = old_nodes.get(name)
        if before is None:
            continue
        lines = [f"addr del {a}/32 dev lo" for a in before.local if a not in node.local]
        lines += [_route("del", r) for r in before.routes if r not in node.routes and _route_survives(r, new, name)]
        if lines:
            batches[new.netns(name)] = lines
    for ns, lines in batches.items():
        sh(["ip", "-n", ns, "-force", "-batch", "-"], input="\n".join(lines) + "\n", check=False)
    new_links = set(new.links) - set(old.links)
    relinked = {(node, iface.name) for link in new_links for node, iface in (link.a, link.b)}
    wanted = {}
    for name, node in new_nodes.items():
        before = old_nodes.get(name)
        if before is None:
            wanted[name] = (node.local, node.routes)
            continue
        local = tuple(a for a in node.local if a not in before.local)
        # A route through a re-created link went with the old one.
        routes = tuple(r for r in node.routes if r not in before.routes or (name, r.dev) in relinked)
        wanted[name] = (local, routes)
    _build(new, tuple(added), tuple(new_links), wanted)
    for name, node in new_nodes.items():
        before = old_nodes.get(name)
        if node.nft and name not in new.hosts and (before is None or before.nft != node.nft):
            load_ruleset(new.netns(name), "flush ruleset\n" + node.nft)
    return [old.netns(name) for name in gone]


def _route_survives(route, new: Topology, node: str) -> bool:
    """A route whose device is gone went with it; deleting it again would only fail."""
    return any(iface.name == route.dev for link in new.links for n, iface in (link.a, link.b) if n == node)


def _route(verb: str, route) -> str:
    line = f"route {verb} {route.dst} dev {route.dev}"
    line += f" via {route.via}" if route.via else ""
    line += f" src {route.src}" if route.src else ""
    return line


def _build(topology: Topology, nodes, links, wanted: dict[str, tuple]) -> None:
    """Create `nodes` and `links`, then add each node's (local addresses, routes) of `wanted`."""
    for node in nodes:
        ns = topology.netns(node.name)
        sh(["ip", "netns", "add", ns])
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        settings = ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]
        settings += ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
        settings.append(f"net.ipv4.ip_forward={int(node.forward)}")
        in_ns(ns, ["sysctl", "-q", "-w", *settings])
    batches: dict[str, list[str]] = {}
    sysctls: dict[str, list[str]] = {}
    for link in links:
        (node_a, a), (node_b, b) = link.a, link.b
        ns_a, ns_b = topology.netns(node_a), topology.netns(node_b)
        sh(["ip", "link", "add", a.name, "netns", ns_a, "type", "veth", "peer", "name", b.name, "netns", ns_b])
        for ns, iface in ((ns_a, a), (ns_b, b)):
            batches.setdefault(ns, []).extend(f"addr add {address} dev {iface.name}" for address in iface.addresses)
            batches[ns].append(f"link set {iface.name} up")
            if iface.proxy_arp:
                # Answer at once: the kernel otherwise waits up to 0.8 s (proxy_delay), longer than a probe's patience.
                sysctls.setdefault(ns, []).extend(
                    [f"net.ipv4.conf.{iface.name}.proxy_arp=1", f"net.ipv4.neigh.{iface.name}.proxy_delay=0"]
                )
    for name, (local, routes) in wanted.items():
        ns = topology.netns(name)
        batches.setdefault(ns, []).extend(f"addr add {address}/32 dev lo" for address in local)
        batches[ns].extend(_route("add", route) for route in routes)
    for ns, lines in batches.items():
        if lines:
            sh(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")
    for ns, settings in sysctls.items():
        in_ns(ns, ["sysctl", "-q", "-w", *settings])


def load_ruleset(ns: str, ruleset: str) -> None:
    """`nft -f` inside the namespace, the text exactly as given."""
    in_ns(ns, ["nft", "-f", "-"], input=ruleset)


def start(ns: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A long-running process inside `ns`, in its own session, output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )


def wait_listening(ns: str, wanted: Sequence[tuple[str, str, int]], timeout: float = 15.0) -> None:
    """Until every (tcp|udp, address, port) listens in `ns`; bounded by `timeout`."""
    deadline = time.monotonic() + timeout
    missing = set(wanted)
    while missing:
        found = set()
        for proto in {p for p, _, _ in missing}:
            flag = "-t" if proto == "tcp" else "-u"
            for line in in_ns(ns, ["ss", "-Hln", flag]).splitlines():
                local = line.split()[3]
                address, _, port = local.rpartition(":")
                found.add((proto, address.strip("[]").split("%")[0], int(port)))
        missing = {
            w
            for w in missing
            if w not in found and (w[0], "0.0.0.0", w[2]) not in found and (w[0], "*", w[2]) not in found
        }
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise LabError(f"{ns}: nothing listens on {sorted(missing)} after {timeout:g}s")
        time.sleep(0.05)


def down(prefix: str) -> list[str]:
    """Stop every process in the run's namespaces, delete them, remove its files. Safe to repeat."""
    directory = run_dir(prefix)
    state_file = directory / "state.json"
    namespaces = json.loads(state_file.read_text())["namespaces"] if state_file.exists() else []
    namespaces = sorted(set(namespaces) | set(_existing(prefix)))
    for ns in namespaces:
        _kill_all(ns)
    for ns in reversed(namespaces):
        with contextlib.suppress(LabError, subprocess.TimeoutExpired):
            sh(["ip", "netns", "del", ns])
        shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    for shared in (STATE_ROOT, NETNS_ETC):
        with contextlib.suppress(OSError):
            shared.rmdir()  # only when empty: no other run (or anyone else) uses it
    return namespaces


def _existing(prefix: str) -> list[str]:
    try:
        listed = sh(["ip", "netns", "list"])
    except LabError:
        return []
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{prefix}-")]


def _kill_all(ns: str, grace: float = 3.0) -> None:
    """SIGTERM to every process in the namespace, SIGKILL to what is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _pids(ns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = _pids(ns)
            time.sleep(0.05)
        if not pids:
            return


def _pids(ns: str) -> list[int]:
    try:
        return [int(p) for p in sh(["ip", "netns", "pids", ns]).split()]
    except LabError:
        return []


def stale_runs() -> list[str]:
    """Runs whose runner is gone (crashed or killed): what `down` should still clean up."""
    out = []
    for state_file in sorted(STATE_ROOT.glob("*/state.json")):
        try:
            owner = json.loads(state_file.read_text())["owner"]
        except (OSError, ValueError, KeyError):
            owner = None
        if owner is None or not _alive(owner):
            out.append(state_file.parent.name)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
