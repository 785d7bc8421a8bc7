"""One lab run: stand the plan up in namespaces, start what runs on each node, and tear it all down.

`Lab` is a context manager; `down()` is also called on SIGINT/SIGTERM and is safe to call twice.
Services are started in dependency order (resolver and metadata first, proxies before MTAs) and
each is waited for until it listens, bounded. What runs on the nodes is decided here; the engine
only builds the network.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from components.matrix import Role
from tools.lab import engine, hosts, topology
from tools.lab.cloudfw import ruleset as cloud_ruleset
from tools.lab.stack import Host, Plan
from tools.lab.standins import policy
from tools.lab.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TEST_DOMAIN = "lab.example"
TEST_MX_NAME = f"mx.{TEST_DOMAIN}"
ANYWHERE_NAME = f"anywhere.{TEST_DOMAIN}"


@dataclass
class Timing:
    plan: float = 0.0
    network: float = 0.0
    services: float = 0.0
    teardown: float = 0.0


@dataclass
class HostRun:
    host: Host
    ns: str
    root: Path
    enter: Path
    resolvers: list[str]
    resolvers_from: str
    steps: list[hosts.Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Lab:
    def __init__(self, plan: Plan, sbin: str | None = None, prefix: str | None = None):
        self.plan = plan
        self.prefix = prefix or f"kl{secrets.token_hex(3)}"
        self.topology: Topology = topology.build(plan, self.prefix)
        self.places = self.topology.places
        self.dir = engine.run_dir(self.prefix)
        self.sbin = Path(sbin) if sbin else None
        self.processes: list[subprocess.Popen] = []
        self.hosts: dict[str, HostRun] = {}
        self.timing = Timing()
        self.probes_run = 0
        self.sinks: dict[str, set[tuple[str, int]]] = {}
        self._down = False

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._previous = {s: signal.signal(s, self._interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def _interrupted(self, signum, frame) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def up(self) -> None:
        started = time.monotonic()
        engine.write_state(self.topology, {"stack": self.plan.stack})
        self.dir.chmod(0o700)
        engine.up(self.topology)
        self.timing.network = time.monotonic() - started
        started = time.monotonic()
        self._prepare()
        self._start_cloud_services()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(self._boot, self.plan.of_role(Role.PROXY)))
            list(pool.map(self._boot, self.plan.of_role(Role.MTA)))
        self._sinks()
        self._verify_files()
        self.timing.services = time.monotonic() - started

    def down(self) -> None:
        if self._down:
            return
        started = time.monotonic()
        engine.down(self.prefix)
        for p in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=2)
        self.timing.teardown = time.monotonic() - started
        self._down = True
        for s, handler in getattr(self, "_previous", {}).items():
            signal.signal(s, handler)

    # -- what runs where ---------------------------------------------------------------------
    def ns(self, node: str) -> str:
        return self.topology.netns(node)

    def journal(self, name: str) -> list[dict]:
        path = self.dir / "journal" / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def journal_path(self, name: str) -> str:
        return str(self.dir / "journal" / f"{name}.jsonl")

    def start(self, node: str, name: str, argv: list[str], ready: list[tuple[str, str, int]], env=None, enter=None):
        """A service on `node` (through the host's `enter` when given), waited for until it listens."""
        command = [str(enter), *argv] if enter else argv
        log = self.dir / "logs" / f"{node}-{name}.log"
        if enter:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as out:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                )  # fmt: skip
        else:
            process = engine.start(self.ns(node), command, log, {"PYTHONPATH": str(ROOT), **(env or {})})
        self.processes.append(process)
        try:
            engine.wait_listening(self.ns(node), ready)
        except engine.LabError as err:
            tail = log.read_text()[-800:] if log.exists() else ""
            raise engine.LabError(f"{node}: {name} did not start: {err}\n{tail}") from None

    def on_host(self, label: str, argv: list[str], env: dict | None = None, timeout: float = 30.0) -> str:
        """Run a command on a host as its boot would (its namespace, its files); its output."""
        run = self.hosts[label]
        done = subprocess.run(
            [str(run.enter), *argv], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )  # fmt: skip
        if done.returncode != 0:
            raise engine.LabError(f"{label}: `{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()[-600:]}")
        return done.stdout

    def _prepare(self) -> None:
        (self.dir / "journal").mkdir(exist_ok=True)
        self._certificates()
        bin_dir = self.dir / "bin"
        bin_dir.mkdir()
        aws = bin_dir / "aws"
        aws.write_text(
            "#!/bin/sh\n# Stands for `aws ssm get-parameter ... --query Parameter.Value`: the stack's token.\n"
            f'[ "$1 $2" = "ssm get-parameter" ] || exit 1\nprintf "%s\\n" "{self.plan.token}"\n'
        )
        aws.chmod(0o700)
        for host in self.plan.hosts:
            ns = self.ns(self.topology.hosts[host.label])
            base = self.dir / "hosts" / host.label
            root, work = base / "root", base / "work"
            hosts.lay_out(host, root, work)
            servers, origin = hosts.resolvers(host, self.places)
            etc = engine.NETNS_ETC / ns
            etc.mkdir(parents=True, exist_ok=True)
            lines = [f"# {host.label}: {origin}", *(f"nameserver {s}" for s in servers), "options timeout:1 attempts:1"]
            (etc / "resolv.conf").write_text("\n".join(lines) + "\n")
            hosts.trust_store(etc, (self.dir / "ca" / "ca.pem").read_text())
            enter = self.dir / "enter" / host.label
            enter.parent.mkdir(exist_ok=True)
            enter.write_text(hosts.enter_script(ns, root, work))
            enter.chmod(0o700)
            self.hosts[host.label] = HostRun(host, ns, root, enter, servers, origin, hosts.steps(host))

    def _certificates(self) -> None:
        """The lab's CA and the PING8 app's certificate (app.<domain>), as a public CA would issue it."""
        ca = self.dir / "ca"
        ca.mkdir()
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        engine.sh(["openssl", "req", "-x509", *key, "-days", "2", "-subj", "/CN=kumolab CA",
                   "-keyout", str(ca / "ca.key"), "-out", str(ca / "ca.pem")])  # fmt: skip
        name = self.app_fqdn
        engine.sh(["openssl", "req", "-new", *key, "-subj", f"/CN={name}",
                   "-keyout", str(ca / "app.key"), "-out", str(ca / "app.csr")])  # fmt: skip
        (ca / "app.ext").write_text(f"subjectAltName=DNS:{name}\n")
        engine.sh(["openssl", "x509", "-req", "-in", str(ca / "app.csr"), "-CA", str(ca / "ca.pem"),
                   "-CAkey", str(ca / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(ca / "app.ext"),
                   "-out", str(ca / "app.pem")])  # fmt: skip

    @property
    def app_fqdn(self) -> str:
        return f"app.{self.plan.settings.domain}"

    @property
    def webhook_url(self) -> str:
        return f"https://{self.app_fqdn}/kumolab/webhook"

    def _start_cloud_services(self) -> None:
        places, plan = self.places, self.plan
        records = [f"--host-record={TEST_MX_NAME},{places.test_mx}", f"--mx-host={TEST_DOMAIN},{TEST_MX_NAME},10",
                   f"--host-record={ANYWHERE_NAME},{places.anywhere}"]  # fmt: skip
        if places.ping8:
            records.append(f"--host-record={self.app_fqdn},{places.ping8[0]}")
        records += [f"--host-record={h.fqdn},{h.public_ip}" for h in plan.hosts]
        self.start(
            "resolver", "dnsmasq",
            ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
             "--bind-interfaces", f"--listen-address={','.join(places.resolvers)}", "--user=root", "--group=root",
             f"--pid-file={self.dir / 'dnsmasq.pid'}", "--log-queries", "--log-facility=-", *records],
            [("udp", a, 53) for a in places.resolvers],
        )  # fmt: skip
        metadata = {}
        for h in plan.hosts:
            seen_as = h.private_ip if plan.cloud == "aws" else h.public_ip
            metadata[seen_as] = {"local-ipv4": h.private_ip, "private-ip": h.private_ip}
        (self.dir / "metadata.json").write_text(json.dumps(metadata))
        self.start("metadata", "metadata",
                   [PY, "-m", "tools.lab.standins.metadata", places.metadata, str(self.dir / "metadata.json"),
                    self.journal_path("metadata")], [("tcp", places.metadata, 80)])  # fmt: skip
        self.start("internet", "mx", [PY, "-m", "tools.lab.standins.mx", places.test_mx, "25", self.journal_path("mx")],
                   [("tcp", places.test_mx, 25)])  # fmt: skip
        if places.ping8:
            ca = self.dir / "ca"
            self.start("internet", "webhook",
                       [PY, "-m", "tools.lab.standins.webhook", places.ping8[0], "443", str(ca / "app.pem"),
                        str(ca / "app.key"), self.journal_path("webhook")], [("tcp", places.ping8[0], 443)])  # fmt: skip
        ports = sorted(set(probe_ports(plan)) | {53})
        self.start("internet", "anywhere", [PY, "-m", "tools.lab.standins.sink", *(f"{places.anywhere}:{p}" for p in ports)],
                   [("tcp", places.anywhere, p) for p in ports])  # fmt: skip

    def _boot(self, host: Host) -> None:
        run = self.hosts[host.label]
        for step in run.steps:
            if step.action == "run":
                self.on_host(host.label, ["/bin/sh", "-c", step.line], env={"KUMOPROXY_ADDRESS_ATTEMPTS": "3",
                             "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"})  # fmt: skip
            elif step.action == "token":
                self.on_host(
                    host.label, hosts.token_unit(host), env={"PATH": f"{self.dir / 'bin'}:{os.environ['PATH']}"}
                )
            elif step.action == "kumod":
                self._kumod(run)
            elif step.action == "nginx":
                self._nginx(run)
            elif step.action == "kumoproxy":
                self._kumoproxy(run)

    def _kumod(self, run: HostRun) -> None:
        path = hosts.file_named(run.host, "/policy/init.lua")
        listen = policy.split_host_port(policy.kumod_listen(run.host.files[path].content))
        if self.sbin:
            for d in ("/var/spool/kumomta/data", "/var/spool/kumomta/meta", "/var/log/kumomta"):
                (run.root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
            argv = [str(self.sbin / "kumod"), "--policy", path, "--user", "root"]
        else:
            argv = [PY, "-m", "tools.lab.standins.kumod", path, self.journal_path(f"{run.host.label}-kumod")]
        self.start(run.host.label, "kumod", argv, [("tcp", *listen)], enter=run.enter)

    def _nginx(self, run: HostRun) -> None:
        conf = self.dir / "hosts" / run.host.label / "nginx.conf"
        conf.write_text(
            "# The machine's own main config stays untouched; this one includes the host's conf.d like Ubuntu's.\n"
            "user root;\npid /var/lib/nginx/kumolab.pid;\nerror_log /var/log/nginx/error.log;\nworker_processes 1;\n"
            "events { worker_connections 256; }\n"
            "http {\n    access_log /var/log/nginx/access.log;\n    include /etc/nginx/conf.d/*.conf;\n}\n"
        )
        ready = [("tcp", "0.0.0.0", p) for p in hosts.nginx_ports(run.host)]
        argv = ["nginx", "-e", "/var/log/nginx/error.log", "-c", str(conf), "-g", "daemon off;"]
        self.start(run.host.label, "nginx", argv, ready, enter=run.enter)

    def _kumoproxy(self, run: HostRun) -> None:
        env_file, policy_path, argv = hosts.kumoproxy_unit(run.host)
        env_path = run.root / env_file.lstrip("/")
        env = policy.env_file(env_path.read_text()) if env_path.exists() else {}
        listeners = policy.proxy_listeners(run.host.files[policy_path].content, env)
        ready = [("tcp", *policy.split_host_port(listeners["socks"]))]
        if listeners["metrics"]:
            ready.append(("tcp", *policy.split_host_port(listeners["metrics"])))
        if self.sbin:
            argv = [str(self.sbin / "proxy-server"), *argv[1:]]
        else:
            argv = [
                PY,
                "-m",
                "tools.lab.standins.kumoproxy",
                policy_path,
                self.journal_path(f"{run.host.label}-kumoproxy"),
            ]
        self.start(run.host.label, "kumoproxy", argv, ready, env=env, enter=run.enter)

    def _sinks(self) -> None:
        """On each host, a listener on every probed port no service holds, on each of its addresses."""
        ports = probe_ports(self.plan)
        for host in self.plan.hosts:
            ns = self.hosts[host.label].ns
            taken = listening(ns)
            addresses = [host.private_ip] if self.plan.cloud == "aws" else [host.public_ip, host.private_ip]
            free = [(a, p) for a in addresses for p in ports if (a, p) not in taken and ("0.0.0.0", p) not in taken]
            self.sinks[host.label] = set(free)
            if free:
                self.start(host.label, "sink", [PY, "-m", "tools.lab.standins.sink", *(f"{a}:{p}" for a, p in free)],
                           [("tcp", a, p) for a, p in free])  # fmt: skip

    def _verify_files(self) -> None:
        """What `make verify` needs to run against this lab: outputs, namespaces, the MTAs' certificates."""
        (self.dir / "outputs.json").write_text(json.dumps(self.plan.outputs, indent=2) + "\n")
        namespaces = {"probes": self.ns("internet"), "hosts": {label: run.ns for label, run in self.hosts.items()}}
        (self.dir / "netns.json").write_text(json.dumps(namespaces, indent=2) + "\n")
        certs = [run.root / "etc/nginx/kumomta-tls/fullchain.pem" for run in self.hosts.values()]
        (self.dir / "mta-certs.pem").write_text("".join(c.read_text() for c in certs if c.exists()))

    def verify_args(self, timeout: float = 3.0) -> list[str]:
        """`make verify`'s arguments for this lab: probes from its internet, inside checks in its namespaces."""
        return [
            "--outputs", str(self.dir / "outputs.json"), "--netns", str(self.dir / "netns.json"),
            "--ca-file", str(self.dir / "mta-certs.pem"), "--only", "probes,inside",
            "--test-mx", TEST_MX_NAME, "--webhook-url", self.webhook_url, "--timeout", f"{timeout:g}",
        ]  # fmt: skip

    # -- changing a running lab -------------------------------------------------------------
    def load_host_firewall(self, label: str, ruleset: str | None = None) -> None:
        """(Re)load a host's ruleset: the rendered one, or `ruleset`; "" flushes it."""
        text = topology.host_firewall(self.plan.host(label)) if ruleset is None else ruleset
        engine.load_ruleset(self.hosts[label].ns, text or "flush ruleset\n")

    def load_cloud_firewall(self, plan: Plan | None = None) -> None:
        """Replace the router's cloud firewall with the one `plan` registers (default: this lab's)."""
        router = self.topology.cloud_router
        interfaces = {h.label: i for h, i in zip(self.plan.hosts, self.topology.cloud_interfaces, strict=True)}
        text = cloud_ruleset(plan or self.plan, interfaces, self.topology.unfiltered)
        engine.load_ruleset(self.ns(router), "table inet cloud {}\ndelete table inet cloud\n" + text)

    def drop_cloud_firewall(self) -> None:
        engine.load_ruleset(self.ns(self.topology.cloud_router), "table inet cloud {}\ndelete table inet cloud\n")

    @contextlib.contextmanager
    def layer(self, which: str):
        """Only one firewall layer in force ("cloud" or "host") while inside; both again after."""
        if which == "cloud":
            for label in self.hosts:
                self.load_host_firewall(label, "")
        elif which == "host":
            self.drop_cloud_firewall()
        try:
            yield
        finally:
            if which == "cloud":
                for label in self.hosts:
                    self.load_host_firewall(label)
            elif which == "host":
                self.load_cloud_firewall()

    def write_host_file(self, label: str, path: str, content: str) -> None:
        (self.hosts[label].root / path.lstrip("/")).write_text(content)

    def reload_nginx(self, label: str) -> None:
        conf = self.dir / "hosts" / label / "nginx.conf"
        self.on_host(label, ["nginx", "-e", "/var/log/nginx/error.log", "-c", str(conf), "-s", "reload"])
        time.sleep(0.3)  # the old workers finish, the new ones take the socket

    def block(self, node: str, on: bool = True) -> None:
        """Make a lab node unreachable (everything in dropped), or reachable again."""
        text = "table inet kumolab_block {\n  chain input {\n    type filter hook input priority -10; policy drop;\n  }\n}\n"
        reset = "table inet kumolab_block {}\ndelete table inet kumolab_block\n"
        engine.load_ruleset(self.ns(node), reset + (text if on else ""))

    # -- probing ----------------------------------------------------------------------------
    def probe(self, node: str, probes: list[dict], timeout: float = 60.0) -> list[dict]:
        """Run probes inside `node`'s namespace (hosts: through `enter`, so with the host's files)."""
        if not probes:
            return []
        self.probes_run += len(probes)
        argv = [PY, "-m", "tools.lab.probe"]
        if node in self.hosts:
            command = [str(self.hosts[node].enter), *argv]
        else:
            command = ["ip", "netns", "exec", self.ns(node), *argv]
        done = subprocess.run(command, input=json.dumps(probes), capture_output=True, text=True, timeout=timeout,
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)  # fmt: skip
        if done.returncode != 0:
            raise engine.LabError(f"probes in {node} failed: {done.stderr.strip()[-600:]}")
        return json.loads(done.stdout)


def probe_ports(plan: Plan) -> list[int]:
    """Every port the guide talks about, and one it never does (8080)."""
    return sorted({22, 25, 80, 443, 5000, 8000, 8080, plan.settings.proxy_metrics_port})


def listening(ns: str) -> set[tuple[str, int]]:
    out = set()
    for line in engine.in_ns(ns, ["ss", "-Hltn"]).splitlines():
        address, _, port = line.split()[3].rpartition(":")
        out.add((address.strip("[]").replace("*", "0.0.0.0"), int(port)))
    return out
