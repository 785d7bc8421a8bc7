"""The lab's service manager: what systemd does for the units the hosts' `systemctl` asks about.

Each host's `systemctl` (tools/lab/standins/systemctl.py) reads the unit files and drop-ins the host
has, evaluates their conditions, and sends the verb here. This manager starts each service in its
host (through the host's `enter`) as systemd(1) would, from the unit's own lines: ExecStartPre=,
then ExecStart= (Type=simple/exec/notify: active once started; forking: once ExecStart= returned
and PIDFile= names the daemon; oneshot: runs to the end), ExecReload= with $MAINPID, Restart= with
RestartSec= when the main process ends, and the default start limit (5 starts in 10 s; not for a
oneshot, which here is kumomta-sync fired by the lab far more often than its timer would). A start
whose Condition*= is not met is skipped and leaves the unit inactive with exit status 0, as
systemd.unit(5) says ("Conditions and Asserts"). Not modelled, and listed: User=, DynamicUser=, the
sandboxing settings, dependencies, timers (enabled, never firing: the lab fires kumomta-sync
itself), and chrony (its restart is accepted). systemd-resolved is modelled by what it changes:
its restart writes the host's resolv.conf from its configuration (tools/lab/hosts.py).
"""

import contextlib
import json
import os
import re
import shlex
import signal
import socketserver
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

START_LIMIT = (5, 10.0)  # systemd's DefaultStartLimitBurst= and DefaultStartLimitIntervalSec=
STOP_WAIT = 5.0
START_WAIT = 15.0
LAB_UNITS = ("systemd-resolved.service", "chrony.service")


@dataclass
class Service:
    host: str
    unit: str
    spec: dict
    process: subprocess.Popen | None = None
    main_pid: int | None = None
    state: str = "inactive"
    sub: str = "dead"
    restart_at: float | None = None
    restarts: int = 0
    starts: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Manager:
    """`host(label)` gives (enter script, host path -> machine path, log directory) of a host."""

    def __init__(self, socket_path: Path, host: Callable, on_lab_unit: Callable[[str, str, str], str]):
        self.socket_path = socket_path
        self.host = host
        self.on_lab_unit = on_lab_unit
        self.services: dict[tuple[str, str], Service] = {}
        self.journal: list[dict] = []
        self.lock = threading.Lock()
        self._closing = threading.Event()
        manager = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = json.loads(self.rfile.readline())
                try:
                    answer = manager.handle(request["host"], request["args"], request["units"])
                except Exception as err:  # noqa: BLE001 - every failure is an answer the host's systemctl prints
                    answer = {"code": 1, "stderr": f"kumolab systemd: {type(err).__name__}: {err}\n"}
                self.wfile.write(json.dumps(answer).encode() + b"\n")

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(str(socket_path), Handler)
        self._threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._watch, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    # -- the verbs -----------------------------------------------------------------------------
    def handle(self, host: str, args: list[str], specs: dict) -> dict:
        verb = next((a for a in args if not a.startswith("-")), "")
        flags = {a for a in args if a.startswith("-")}
        self._note(host, verb=verb, args=args)
        if verb in ("daemon-reload", "reset-failed"):
            return _ok()
        out, err, code = [], [], 0
        for name, spec in specs.items():
            if not spec.get("found") and name not in LAB_UNITS:
                if verb == "is-active":
                    out.append("inactive")
                    code = code or 3
                    continue
                err.append(f"Failed to {verb} {name}: Unit {name} not found.")
                code = 5
                continue
            result = self._one(host, verb, flags, name, spec)
            if result is None:
                return {"code": 1, "stderr": f"kumolab systemctl: `{verb}` is not modelled\n"}
            c, text = result
            if verb in ("is-active", "show"):
                out.append(text)
            elif text:
                err.append(text)
            code = code or c
        quiet = "--quiet" in flags or "-q" in flags
        return {
            "code": code,
            "stdout": "" if quiet or not out else "\n".join(out) + "\n",
            "stderr": "\n".join(err) + "\n" if err else "",
        }

    def _one(self, host: str, verb: str, flags: set[str], name: str, spec: dict) -> tuple[int, str] | None:
        if name in LAB_UNITS:
            if verb in ("restart", "start", "reload-or-restart", "try-restart", "reload"):
                return 0, self.on_lab_unit(host, name, verb)
            return (0, "active") if verb == "is-active" else (0, "")
        service = self._service(host, name, spec)
        with service.lock:
            service.spec = spec
            if verb == "is-active":
                return (0 if service.state == "active" else 3), service.state
            if verb == "show":  # the properties kumomta-apply asks for (`-p ActiveState,MainPID,NRestarts`)
                pid = self._main_pid(service) or 0
                return 0, f"ActiveState={service.state}\nMainPID={pid}\nNRestarts={service.restarts}"
            if name.endswith((".timer", ".target")):
                if verb in ("start", "restart", "enable", "reload-or-restart") and (
                    "--now" in flags or verb != "enable"
                ):
                    service.state, service.sub = "active", "waiting"
                return 0, ""
            if verb == "enable":
                return self._start(service) if "--now" in flags else (0, "")
            if verb == "disable":
                return (self._stop(service), "") if "--now" in flags else (0, "")
            if verb == "start":
                return (0, "") if service.state == "active" else self._start(service)
            if verb == "stop":
                return self._stop(service), ""
            if verb == "restart" or (verb == "try-restart" and service.state == "active"):
                self._stop(service)
                return self._start(service)
            if verb == "try-restart":
                return 0, ""
            if verb in ("reload", "reload-or-restart"):
                if service.state == "active":
                    return self._reload(service)
                if verb == "reload":
                    return 1, f"Failed to reload {name}: Job type reload is not applicable for unit {name}."
                return self._start(service)
        return None

    def forget(self, host: str) -> None:
        """The host is gone (its namespace with every process in it): nothing of it is managed any more."""
        with self.lock:
            for key in [k for k in self.services if k[0] == host]:
                del self.services[key]

    # -- starting and stopping -----------------------------------------------------------------
    def _service(self, host: str, name: str, spec: dict) -> Service:
        with self.lock:
            return self.services.setdefault((host, name), Service(host, name, spec))

    def _start(self, service: Service) -> tuple[int, str]:
        spec, name = service.spec, service.unit
        unmet = [c["check"] for c in spec.get("conditions", []) if c["met"] is False]
        if unmet:
            service.state, service.sub = "inactive", "dead"
            self._note(service.host, unit=name, event="skipped", why=unmet)
            return 0, ""
        now = time.monotonic()
        service.starts = [t for t in service.starts if now - t < START_LIMIT[1]] + [now]
        # A oneshot here is kumomta-sync, which the lab fires far more often than its 30 s timer would.
        if len(service.starts) > START_LIMIT[0] and spec.get("type") != "oneshot":
            service.state, service.sub = "failed", "start-limit-hit"
            return 1, f"Job for {name} failed: start request repeated too quickly."
        enter, path, logs = self.host(service.host)
        for directory in spec.get("runtime_directory", []):
            for d in directory.split():
                path(f"/run/{d}").mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               **spec.get("environment", {})}  # fmt: skip
        log = logs / f"{service.host}-{name}.log"
        for line in spec.get("exec_start_pre", []):
            code = self._run(enter, line, env, log)
            if code != 0 and not line.startswith("-"):
                service.state, service.sub = "failed", "exit-code"
                self._note(service.host, unit=name, event="failed", step="ExecStartPre", code=code)
                return 1, _failed(name)
        (line,) = spec["exec_start"][-1:] or [""]
        kind = spec.get("type", "simple")
        service.restart_at = None
        if kind in ("forking", "oneshot"):
            code = self._run(enter, line, env, log)
            if code != 0:
                service.state, service.sub = "failed", "exit-code"
                self._note(service.host, unit=name, event="failed", step="ExecStart", code=code)
                return 1, _failed(name)
            if kind == "oneshot":
                service.state, service.sub = "inactive", "dead"
                return 0, ""
            service.main_pid = self._pid_file(path(spec["pid_file"])) if spec.get("pid_file") else None
            service.process = None
            if service.main_pid is None:
                service.state, service.sub = "failed", "protocol"
                return 1, _failed(name)
        else:
            with open(log, "ab") as out:
                service.process = subprocess.Popen(
                    [str(enter), *_argv(line, env)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True,
                )  # fmt: skip
            service.main_pid = service.process.pid
        service.state, service.sub = "active", "running"
        self._note(service.host, unit=name, event="started", pid=service.main_pid)
        return 0, ""

    def _stop(self, service: Service) -> int:
        service.restart_at = None
        pid = self._main_pid(service)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT
            while self._alive(service, pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if self._alive(service, pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if service.process:
                    service.process.wait(timeout=STOP_WAIT)
        service.process, service.main_pid = None, None
        service.state, service.sub = "inactive", "dead"
        return 0

    def _reload(self, service: Service) -> tuple[int, str]:
        enter, _, logs = self.host(service.host)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               **service.spec.get("environment", {}), "MAINPID": str(self._main_pid(service) or "")}  # fmt: skip
        for line in service.spec.get("exec_reload", []):
            code = self._run(enter, line, env, logs / f"{service.host}-{service.unit}.log")
            if code != 0 and not line.startswith("-"):
                return 1, f"Job for {service.unit} failed because the control process exited with error code."
        self._note(service.host, unit=service.unit, event="reloaded")
        return 0, ""

    def _run(self, enter: Path, line: str, env: dict, log: Path) -> int:
        with open(log, "ab") as out:
            try:
                return subprocess.run(
                    [str(enter), *_argv(line, env)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=env, timeout=90, check=False,
                ).returncode  # fmt: skip
            except subprocess.TimeoutExpired:
                return 124

    def _pid_file(self, path: Path) -> int | None:
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text().split()[0])
            time.sleep(0.02)
        return None

    # -- watching --------------------------------------------------------------------------------
    def _main_pid(self, service: Service) -> int | None:
        if service.process is not None:
            return service.process.pid if service.process.poll() is None else None
        return service.main_pid if service.main_pid and _running(service.main_pid) else None

    def _alive(self, service: Service, pid: int) -> bool:
        if service.process is not None and service.process.pid == pid:
            return service.process.poll() is None
        return _running(pid)

    def _watch(self) -> None:
        """A main process that ended: restarted as Restart= says, after RestartSec=, or the unit fails."""
        while not self._closing.wait(0.05):
            for service in list(self.services.values()):
                if not service.lock.acquire(blocking=False):
                    continue
                try:
                    self._check(service)
                finally:
                    service.lock.release()

    def _check(self, service: Service) -> None:
        now = time.monotonic()
        if service.restart_at is not None:
            if now >= service.restart_at:
                service.restarts += 1
                self._start(service)
            return
        if service.state != "active" or service.sub == "waiting" or self._main_pid(service):
            return
        code = service.process.returncode if service.process is not None else None
        restart = service.spec.get("restart", "no")
        clean = code == 0
        self._note(service.host, unit=service.unit, event="exited", code=code)
        if restart == "always" or (restart == "on-failure" and not clean):
            service.state, service.sub = "activating", "auto-restart"
            service.restart_at = now + _seconds(service.spec.get("restart_sec", "0.1"))
        else:
            service.state, service.sub = ("inactive", "dead") if clean else ("failed", "exit-code")
        service.process = None

    def _note(self, host: str, **event) -> None:
        with self.lock:
            self.journal.append({"time": time.time(), "host": host, **event})


def _ok() -> dict:
    return {"code": 0, "stdout": "", "stderr": ""}


def _failed(unit: str) -> str:
    return (
        f"Job for {unit} failed because the control process exited with error code.\n"
        f'See "systemctl status {unit}" and "journalctl -xeu {unit}" for details.'
    )


def _argv(line: str, env: dict[str, str]) -> list[str]:
    """An Exec line as systemd runs it: its prefixes dropped, `$X` split into words, `${X}` substituted."""
    line = line.lstrip("-@:+!")
    out = []
    for word in shlex.split(line):
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            out += env.get(whole.group(1), "").split()
        else:
            out.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return out


def _seconds(text: str) -> float:
    text = text.strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text.rstrip("s") or 0)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
