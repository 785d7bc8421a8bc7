"""One lab run: the plan stood up in namespaces, each host booted and handed its bundle through its
channel, changed as `pulumi up` would change it, and torn down.

`Lab` is a context manager; `down()` is also called on SIGINT/SIGTERM and is safe to call twice.
Up: the network (engine), the lab's own services (resolver, metadata, test MX, PING8 webhook, "anything
out there", on AWS the SSM endpoint), the lab's service manager (tools/lab/systemd.py), then each
host's first boot (tools/lab/firstboot.py, in the host) and its first bundle through its channel
(tools/lab/channel.py): on AWS the first boot fetches it itself, on Hetzner the deploy node pushes it.
`change()` re-plans with other settings and delivers the difference to the running hosts the same
way, adding and removing hosts' namespaces as the plan adds and removes hosts. Every wait is bounded.
"""

import contextlib
import dataclasses
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
from tools.lab import channel, engine, hosts, systemd, topology
from tools.lab.cloudfw import ruleset as cloud_ruleset
from tools.lab.stack import Host, Plan
from tools.lab.stack import plan as make_plan
from tools.lab.topology import Topology

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TEST_DOMAIN = "lab.example"
TEST_MX_NAME = f"mx.{TEST_DOMAIN}"
ANYWHERE_NAME = f"anywhere.{TEST_DOMAIN}"
SYNC_WAIT = 30
"""Seconds a first boot's kumomta-sync waits for its parameter here (the rendered 900 is a cloud's patience)."""


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
    machine: hosts.Machine
    resolvers: list[str]
    resolvers_from: str
    steps: list[dict] = field(default_factory=list)
    """Its first boot, one entry per step (tools/lab/firstboot.py)."""

    @property
    def root(self) -> Path:
        return self.machine.root

    @property
    def enter(self) -> Path:
        return self.machine.enter

    def file(self, path: str) -> str:
        """A file as the host has it now."""
        return self.machine.path(path).read_text()


@dataclass
class Change:
    """One `up` delivered to the running lab: when it was published and how each host got it."""

    what: str
    published: float
    """AWS: seconds `up` took to write the parameters; the timers fire after it."""
    deliveries: list[channel.Delivery]
    booted: list[str]
    removed: list[str]

    @property
    def day2(self) -> list[channel.Delivery]:
        """Deliveries to hosts that were already running."""
        return [d for d in self.deliveries if d.label not in self.booted]

    @property
    def seconds(self) -> float:
        """From published to applied on every running host the change touched."""
        return max((d.seconds for d in self.day2), default=0.0)


class Lab:
    def __init__(self, plan: Plan, sbin: str | None = None, prefix: str | None = None, overrides: dict | None = None):
        self.plan = plan
        self.overrides = dict(overrides or {})
        """The settings the plan was made with; `change()` re-plans on top of them."""
        self.prefix = prefix or f"kl{secrets.token_hex(3)}"
        self.topology: Topology = topology.build(plan, self.prefix)
        self.places = self.topology.places
        self.dir = engine.run_dir(self.prefix)
        self.sbin = Path(sbin) if sbin else None
        self.processes: list[subprocess.Popen] = []
        self.services: dict[str, subprocess.Popen] = {}
        self.hosts: dict[str, HostRun] = {}
        self.manager: systemd.Manager | None = None
        self.timing = Timing()
        self.probes_run = 0
        self.sinks: dict[str, set[tuple[str, int]]] = {}
        self.sink_processes: dict[str, subprocess.Popen] = {}
        self.changes: list[Change] = []
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
        first = self._deliver(None, self.plan, "first boot")
        self.changes.append(first)
        refused = [f"{d.label}: {d.output[-800:]}" for d in first.deliveries if d.code != 0]
        if refused:
            raise engine.LabError("the first bundle did not apply on " + "; ".join(refused))
        self._settle(self.plan.hosts)
        self._sinks()
        self._verify_files()
        self.timing.services = time.monotonic() - started

    def down(self) -> None:
        if self._down:
            return
        started = time.monotonic()
        if self.manager:
            self.manager.close()  # first, so it restarts nothing the teardown stops
        engine.down(self.prefix)
        for p in [*self.processes, *(s.process for s in (self.manager.services.values() if self.manager else []))]:
            if p is not None:
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

    def start(self, node: str, name: str, argv: list[str], ready: list[tuple[str, str, int]], env=None):
        """One of the lab's own services on `node`, waited for until it listens."""
        log = self.dir / "logs" / f"{node}-{name}.log"
        process = engine.start(self.ns(node), argv, log, {"PYTHONPATH": str(ROOT), **(env or {})})
        self.processes.append(process)
        self.services[name] = process
        try:
            engine.wait_listening(self.ns(node), ready)
        except engine.LabError as err:
            tail = log.read_text()[-800:] if log.exists() else ""
            raise engine.LabError(f"{node}: {name} did not start: {err}\n{tail}") from None
        return process

    def on_host(self, label: str, argv: list[str], env: dict | None = None, timeout: float = 30.0) -> str:
        """Run a command on a host (its namespaces, its files); its output."""
        done = self.run_on_host(label, argv, env=env, timeout=timeout)
        if done.returncode != 0:
            raise engine.LabError(f"{label}: `{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()[-600:]}")
        return done.stdout

    def run_on_host(self, label: str, argv: list[str], input: str | None = None, env: dict | None = None,
                    timeout: float = 30.0) -> subprocess.CompletedProcess:  # fmt: skip
        run = self.hosts[label]
        return subprocess.run(
            [str(run.enter), *argv], input=input, capture_output=True, text=True, timeout=timeout, check=False,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        )  # fmt: skip

    def _prepare(self) -> None:
        (self.dir / "journal").mkdir(exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        (self.dir / "deploy").mkdir(mode=0o700, exist_ok=True)
        self._certificates()
        self.manager = systemd.Manager(self.dir / "systemd.sock", self._host_access, self._lab_unit)

    def _certificates(self) -> None:
        """The lab's CA; the PING8 app's certificate (app.<domain>) and, on AWS, the SSM endpoint's, as a
        public CA would issue them."""
        ca = self.dir / "ca"
        ca.mkdir()
        engine.sh(["openssl", "req", "-x509", *_KEY, "-days", "2", "-subj", "/CN=kumolab CA",
                   "-keyout", str(ca / "ca.key"), "-out", str(ca / "ca.pem")])  # fmt: skip
        self._issue("app", f"DNS:{self.app_fqdn}")
        if self.plan.cloud == "aws":
            self._issue("ssm", f"DNS:{self.ssm_name},IP:{self.places.ssm}")

    def _issue(self, name: str, names: str) -> None:
        ca = self.dir / "ca"
        engine.sh(["openssl", "req", "-new", *_KEY, "-subj", f"/CN={names.split(',')[0][4:]}",
                   "-keyout", str(ca / f"{name}.key"), "-out", str(ca / f"{name}.csr")])  # fmt: skip
        (ca / f"{name}.ext").write_text(f"subjectAltName={names}\n")
        engine.sh(["openssl", "x509", "-req", "-in", str(ca / f"{name}.csr"), "-CA", str(ca / "ca.pem"),
                   "-CAkey", str(ca / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(ca / f"{name}.ext"),
                   "-out", str(ca / f"{name}.pem")])  # fmt: skip

    @property
    def app_fqdn(self) -> str:
        return f"app.{self.plan.settings.domain}"

    @property
    def webhook_url(self) -> str:
        return f"https://{self.app_fqdn}/kumolab/webhook"

    @property
    def region(self) -> str:
        (region,) = {h.poll[0] for h in self.plan.hosts if h.poll}
        return region

    @property
    def ssm_name(self) -> str:
        return f"ssm.{self.region}.amazonaws.com"

    def _start_cloud_services(self) -> None:
        places = self.places
        for node in ("internet", "deploy"):
            # No resolver of the cloud's out there: a lookup (a server's getfqdn() at start) is answered at once by
            # the internet's public DNS (_public_dns) or, on deploy, refused at once instead of timing out.
            etc = engine.NETNS_ETC / self.ns(node)
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(f"# the lab's {node}: no resolver of its own\nnameserver 127.0.0.1\n")
        self._records()
        self._dnsmasq()
        self._public_dns()
        self.start("metadata", "metadata",
                   [PY, "-m", "tools.lab.standins.metadata", places.metadata, str(self.dir / "metadata.json"),
                    self.journal_path("metadata")], [("tcp", places.metadata, 80)])  # fmt: skip
        self.start("internet", "mx", [PY, "-m", "tools.lab.standins.mx", places.test_mx, "25", self.journal_path("mx"), "127.0.0.1"],
                   [("tcp", places.test_mx, 25)])  # fmt: skip
        self._webhook()
        ports = sorted(set(probe_ports(self.plan)) | {53})
        self.start("internet", "anywhere", [PY, "-m", "tools.lab.standins.sink", *(f"{places.anywhere}:{p}" for p in ports)],
                   [("tcp", places.anywhere, p) for p in ports])  # fmt: skip
        if places.ssm:
            ca = self.dir / "ca"
            self.start("internet", "ssm", [PY, "-m", "moto.server", "-H", places.ssm, "-p", "443", "-s",
                                           "-c", str(ca / "ssm.pem"), "-k", str(ca / "ssm.key")],
                       [("tcp", places.ssm, 443)])  # fmt: skip

    def _dnsmasq(self) -> None:
        """The hosts' resolver, at each cloud's addresses."""
        resolvers = self.places.resolvers
        self.start("resolver", "dnsmasq", self._dns_server(resolvers, "dnsmasq"), [("udp", a, 53) for a in resolvers])

    def _public_dns(self) -> None:
        """The DNS as the world sees it, for `make verify`'s sending records: on the internet's loopback."""
        self.start("internet", "public-dns", self._dns_server(["127.0.0.1"], "public-dns"), [("udp", "127.0.0.1", 53)])

    def _dns_server(self, listen: list[str], name: str) -> list[str]:
        """dnsmasq answering the lab's names (the hosts' with their PTRs, the test MX) and every TXT record the
        program registers (DKIM, SPF, DMARC). Those are in a configuration file: dnsmasq reads quoted strings
        there, and takes quotes on its command line literally."""
        conf = self.dir / f"{name}.conf"
        conf.write_text("".join(f"txt-record={fqdn},{','.join(json.dumps(s) for s in strings)}\n"
                                for fqdn, strings in self.plan.txt))  # fmt: skip
        return ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}", "--no-resolv", "--no-hosts", "--no-poll",
                "--bind-interfaces", f"--listen-address={','.join(listen)}", "--user=root", "--group=root",
                f"--pid-file={self.dir / f'{name}.pid'}", "--log-queries", "--log-facility=-",
                f"--addn-hosts={self.dir / 'dns-hosts'}", f"--host-record={TEST_MX_NAME},{self.places.test_mx}",
                f"--mx-host={TEST_DOMAIN},{TEST_MX_NAME},10"]  # fmt: skip

    def _webhook(self) -> None:
        if self.places.ping8:
            ca = self.dir / "ca"
            self.start("internet", "webhook",
                       [PY, "-m", "tools.lab.standins.webhook", self.places.ping8[0], "443", str(ca / "app.pem"),
                        str(ca / "app.key"), self.journal_path("webhook")], [("tcp", self.places.ping8[0], 443)])  # fmt: skip

    def _records(self) -> None:
        """What the resolver answers and the metadata service knows: they follow the plan's hosts."""
        places, plan = self.places, self.plan
        names = [(places.anywhere, ANYWHERE_NAME), *((h.public_ip, h.fqdn) for h in plan.hosts)]
        if places.ping8:
            names.append((places.ping8[0], self.app_fqdn))
        if places.ssm:
            names.append((places.ssm, self.ssm_name))
        (self.dir / "dns-hosts").write_text("".join(f"{address} {name}\n" for address, name in names))
        metadata = {}
        for h in plan.hosts:
            seen_as = h.private_ip if plan.cloud == "aws" else h.public_ip
            metadata[seen_as] = {"local-ipv4": h.private_ip, "private-ip": h.private_ip, "role": f"{h.role.value}-role"}
        (self.dir / "metadata.json").write_text(json.dumps(metadata))
        for name in ("dnsmasq", "public-dns"):
            if name in self.services:
                self.services[name].send_signal(signal.SIGHUP)  # dnsmasq re-reads --addn-hosts

    # -- hosts -------------------------------------------------------------------------------
    def _host_access(self, label: str):
        run = self.hosts[label]
        return run.enter, run.machine.path, self.dir / "logs"

    def _lab_unit(self, label: str, unit: str, verb: str) -> str:
        """systemd-resolved: a restart makes the host use what its configuration says (its resolv.conf)."""
        run = self.hosts[label]
        if unit == "systemd-resolved.service":
            dropin = run.machine.path(hosts.RESOLVED_DROPIN)
            text = dropin.read_text() if dropin.exists() else None
            run.resolvers, run.resolvers_from = hosts.resolvers(run.host, self.places, text)
            (engine.NETNS_ETC / run.ns / "resolv.conf").write_text(
                hosts.resolv_conf(label, run.resolvers, run.resolvers_from)
            )
        return ""

    def _boot(self, host: Host) -> HostRun:
        """The host's machine, then its first boot as cloud-init runs it, in the host."""
        ns = self.ns(self.topology.hosts[host.label])
        machine = hosts.Machine(self.dir / "hosts" / host.label)
        machine.prepare()
        journal = Path(self.journal_path(f"{host.label}-apply"))
        hosts.image(machine, host.label, PY, ROOT, self.dir / "systemd.sock", journal)
        servers, origin = hosts.resolvers(host, self.places, None)
        etc = engine.NETNS_ETC / ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(hosts.resolv_conf(host.label, servers, origin))
        hosts.trust_store(etc, (self.dir / "ca" / "ca.pem").read_text())
        run = HostRun(host, ns, machine, servers, origin)
        self.hosts[host.label] = run
        holder = engine.start(ns, ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                                   machine.holder(ns, self.dir)], self.dir / "logs" / f"{host.label}-holder.log")  # fmt: skip
        self.processes.append(holder)
        machine.holder_pid.write_text(f"{holder.pid}\n")
        deadline = time.monotonic() + 10
        while not (machine.base / "mounted").exists():
            if holder.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "logs" / f"{host.label}-holder.log").read_text()[-600:]
                raise engine.LabError(f"{host.label}: its file system did not come up: {log}")
            time.sleep(0.02)
        machine.enter.write_text(machine.enter_script())
        machine.enter.chmod(0o700)
        # The lab times kumomta-apply when it fires kumomta-sync (AWS), through this drop-in.
        dropin = machine.root / "etc/systemd/system/kumomta-sync.service.d/kumolab.conf"
        dropin.parent.mkdir(parents=True, exist_ok=True)
        dropin.write_text("[Service]\nEnvironment=KUMOMTA_APPLY=/usr/local/sbin/kumolab-timed-apply\n")
        config = {
            "cloud_config": host.boot,
            "package": hosts.package_files(host.label, PY, ROOT, self.sbin, self.dir / "journal"),
            "spool_dir": "/var/spool/kumomta",
            "sync_wait": SYNC_WAIT,
        }
        (machine.base / "firstboot.json").write_text(json.dumps(config))
        done = self.run_on_host(host.label, [PY, "-m", "tools.lab.firstboot", str(machine.base / "firstboot.json")],
                                timeout=SYNC_WAIT + 120)  # fmt: skip
        run.steps = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0:
            failed = next((s for s in run.steps if not s["ok"]), {"step": "?", "what": done.stderr.strip()[-600:]})
            raise engine.LabError(f"{host.label}: first boot failed at `{failed['step']}`: {failed['what']}")
        return run

    def _deliver(self, old: Plan | None, new: Plan, what: str) -> Change:
        """`up` as the plan changes: new hosts booted, each running host handed its new bundle."""
        before = {h.label for h in old.hosts} if old else set()
        added = [h for h in new.hosts if h.label not in before]
        kept = [h for h in new.hosts if h.label in before]
        for h in kept:
            self.hosts[h.label].host = h
        published = 0.0
        if new.cloud == "aws":
            put, delete = channel.changed_parameters(old, new)
            if put or delete:
                published = channel.publish(self.ns("deploy"), f"https://{self.places.ssm}",
                                            self.dir / "ca" / "ca.pem", self.region, put, delete, self.dir / "deploy")  # fmt: skip
        pushes = {h.label for h in channel.changed_pushes(old, new)}

        def new_host(host: Host) -> channel.Delivery:
            started = time.monotonic()
            self._boot(host)
            if host.label in pushes:
                pushed = channel.push(self.ns("deploy"), host, self.dir / "deploy")
                return channel.Delivery(host.label, "ssh", pushed.code, time.monotonic() - started, pushed.output)
            return channel.Delivery(host.label, "ssm", 0, time.monotonic() - started, "first boot")

        def running(host: Host) -> channel.Delivery | None:
            if new.cloud == "aws":
                run = self.hosts[host.label]
                return channel.tick(run.enter, host.label, self.dir / "logs" / f"{host.label}-kumomta-sync.service.log",
                                    Path(self.journal_path(f"{host.label}-apply")))  # fmt: skip
            if host.label in pushes:
                return channel.push(self.ns("deploy"), host, self.dir / "deploy")
            return None

        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(new_host, h) for h in added] + [pool.submit(running, h) for h in kept]
            deliveries = [d for d in (f.result() for f in futures) if d is not None]
        return Change(what, published, deliveries, [h.label for h in added], [])

    def change(self, what: str, overrides: dict | None = None) -> Change:
        """Re-plan with `overrides` on top of the lab's own settings and deliver it as `pulumi up` would."""
        return self.apply(make_plan(self.plan.stack, {**self.overrides, **(overrides or {})}), what)

    def apply(self, new: Plan, what: str) -> Change:
        old, old_topology = self.plan, self.topology
        new_topology = topology.build(new, self.prefix)
        self._stop_sinks()
        removed = [label for label in self.hosts if label not in {h.label for h in new.hosts}]
        for label in removed:
            self.manager.forget(label)
        engine.update(old_topology, new_topology, {"stack": new.stack})
        for label in removed:
            del self.hosts[label]
        self.plan, self.topology, self.places = new, new_topology, new_topology.places
        self._records()
        if old_topology.places.resolvers != self.places.resolvers or old.txt != new.txt:
            self._restart("dnsmasq", self._dnsmasq)
        if old.txt != new.txt:  # dnsmasq reads TXT records only at start
            self._restart("public-dns", self._public_dns)
        if old_topology.places.ping8 != self.places.ping8:
            self._restart("webhook", self._webhook)
        change = self._deliver(old, new, what)
        change.removed = removed
        self._settle([h for h in new.hosts if h.label in {d.label for d in change.deliveries if d.code == 0}])
        self._sinks()
        self._verify_files()
        self.changes.append(change)
        return change

    def deliver_bundle(self, label: str, document: dict) -> channel.Delivery:
        """Hand one host a bundle of the lab's own making through its channel (a bad version, say)."""
        host = self.plan.host(label)
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        if self.plan.cloud == "aws":
            channel.publish(self.ns("deploy"), f"https://{self.places.ssm}", self.dir / "ca" / "ca.pem", self.region,
                            {host.poll[1]: {"type": "String", "value": text}}, [], self.dir / "deploy")  # fmt: skip
            run = self.hosts[label]
            return channel.tick(run.enter, label, self.dir / "logs" / f"{label}-kumomta-sync.service.log",
                                Path(self.journal_path(f"{label}-apply")))  # fmt: skip
        pushed = dataclasses.replace(host, push=dataclasses.replace(host.push, stdin=text))
        return channel.push(self.ns("deploy"), pushed, self.dir / "deploy")

    def _restart(self, name: str, start) -> None:
        process = self.services.pop(name)
        process.terminate()
        process.wait(timeout=10)
        start()

    def _settle(self, targets: list[Host], timeout: float = 15.0) -> None:
        """Until each host's services listen where its files say (bounded)."""
        for host in targets:
            run = self.hosts[host.label]
            if host.role == Role.MTA:
                ready = [("tcp", "0.0.0.0", p) for p in hosts.nginx_ports(host)] + hosts.kumod_ready(host)
            else:
                ready = hosts.proxy_ready(host, run.file("/etc/kumoproxy/listen.env"))
            engine.wait_listening(run.ns, ready, timeout)

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
                log = self.dir / "logs" / f"{host.label}-sink.log"
                argv = [PY, "-m", "tools.lab.standins.sink", *(f"{a}:{p}" for a, p in free)]
                process = engine.start(ns, argv, log, {"PYTHONPATH": str(ROOT)})
                self.processes.append(process)
                self.sink_processes[host.label] = process
                engine.wait_listening(ns, [("tcp", a, p) for a, p in free])

    def _stop_sinks(self) -> None:
        for process in self.sink_processes.values():
            process.terminate()
        for process in self.sink_processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.sink_processes.clear()
        self.sinks.clear()

    def _verify_files(self) -> None:
        """What `make verify` needs to run against this lab: outputs, namespaces, the MTAs' certificates."""
        (self.dir / "outputs.json").write_text(json.dumps(self.plan.outputs, indent=2) + "\n")
        namespaces = {
            "probes": self.ns("internet"),
            "hosts": {label: run.ns for label, run in self.hosts.items()},
            "enter": {label: str(run.enter) for label, run in self.hosts.items()},
        }
        (self.dir / "netns.json").write_text(json.dumps(namespaces, indent=2) + "\n")
        certs = [run.root / "etc/nginx/kumomta-tls/fullchain.pem" for run in self.hosts.values()]
        (self.dir / "mta-certs.pem").write_text("".join(c.read_text() for c in certs if c.exists()))

    def verify_args(self, timeout: float = 3.0, only: str = "probes,inside") -> list[str]:
        """`make verify`'s arguments for this lab: probes from its internet, inside checks in its namespaces, the
        sending records from the DNS the internet sees."""
        return [
            "--outputs", str(self.dir / "outputs.json"), "--netns", str(self.dir / "netns.json"),
            "--ca-file", str(self.dir / "mta-certs.pem"), "--only", only, "--resolver", "127.0.0.1",
            "--test-mx", TEST_MX_NAME, "--webhook-url", self.webhook_url, "--timeout", f"{timeout:g}",
        ]  # fmt: skip

    # -- changing a running lab by hand (faults) ---------------------------------------------
    def load_host_firewall(self, label: str, ruleset: str | None = None) -> None:
        """(Re)load a host's ruleset: its own /etc/nftables.conf, or `ruleset`; "" flushes it."""
        text = self.hosts[label].file(topology.HOST_FIREWALL) if ruleset is None else ruleset
        engine.load_ruleset(self.hosts[label].ns, text or "flush ruleset\n")

    def load_cloud_firewall(self, plan: Plan | None = None) -> None:
        """Replace the router's cloud firewall with the one `plan` registers (default: this lab's)."""
        router = self.topology.cloud_router
        text = cloud_ruleset(plan or self.plan, self.topology.interfaces, self.topology.unfiltered)
        engine.load_ruleset(self.ns(router), "table inet cloud {}\ndelete table inet cloud\n" + text)

    def drop_cloud_firewall(self) -> None:
        engine.load_ruleset(self.ns(self.topology.cloud_router), "table inet cloud {}\ndelete table inet cloud\n")

    @contextlib.contextmanager
    def layer(self, which: str):
        """Only one firewall layer in force ("cloud" or "host") while inside; both again after."""
        saved = {label: run.file(topology.HOST_FIREWALL) for label, run in self.hosts.items()}
        if which == "cloud":
            for label in self.hosts:
                self.load_host_firewall(label, "")
        elif which == "host":
            self.drop_cloud_firewall()
        try:
            yield
        finally:
            if which == "cloud":
                for label, text in saved.items():
                    self.load_host_firewall(label, text)
            elif which == "host":
                self.load_cloud_firewall()

    def write_host_file(self, label: str, path: str, content: str) -> None:
        """Change a file on the host behind its agent's back (a planted fault)."""
        done = self.run_on_host(label, ["/bin/sh", "-c", 'cat > "$0"', path], input=content)
        if done.returncode != 0:
            raise engine.LabError(f"{label}: could not write {path}: {done.stderr.strip()}")

    def reload_nginx(self, label: str) -> None:
        self.on_host(label, ["systemctl", "reload", "nginx.service"])
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


_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def probe_ports(plan: Plan) -> list[int]:
    """Every port the guide talks about, and one it never does (8080)."""
    return sorted({22, 25, 80, 443, 5000, 8000, 8080, plan.settings.proxy_metrics_port})


def listening(ns: str) -> set[tuple[str, int]]:
    out = set()
    for line in engine.in_ns(ns, ["ss", "-Hltn"]).splitlines():
        address, _, port = line.split()[3].rpartition(":")
        out.add((address.strip("[]").replace("*", "0.0.0.0"), int(port)))
    return out
