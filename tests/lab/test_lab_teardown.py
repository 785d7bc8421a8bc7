"""Teardown leaves nothing behind (namespaces, veths, processes, files), after a clean run, twice,
after a re-plan added a host, after SIGINT and after the runner is killed outright."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.lab.conftest import needs_lab
from tools.lab import engine
from tools.lab.lab import ROOT, Lab
from tools.lab.stack import plan

pytestmark = needs_lab


def leftovers(prefix: str) -> list[str]:
    found = [
        n
        for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
        if n.startswith(prefix)
    ]
    found += [str(p) for p in (engine.run_dir(prefix), engine.NETNS_ETC) if p.exists() and prefix in str(p)]
    found += [str(p) for p in engine.NETNS_ETC.glob(f"{prefix}-*")] if engine.NETNS_ETC.exists() else []
    found += [args for args in _commands() if f"/{prefix}/" in args or f"{prefix}-" in args]
    return found


def _commands() -> list[str]:
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):  # the process ended meanwhile
            out.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return out


def test_a_finished_lab_leaves_nothing_and_teardown_can_run_again():
    lab = Lab(plan("prod"))
    with lab:
        # A proxy a re-plan added: its namespace is recorded before it is built, and goes too.
        lab.change("add proxy2", {"kumomta:proxyHosts": ["proxy", "proxy2"]})
        assert f"{lab.prefix}-proxy2" in engine.sh(["ip", "netns", "list"])
        pids = [p.pid for p in lab.processes]
        assert pids and lab.topology.namespaces
    assert leftovers(lab.prefix) == []
    assert all(p.poll() is not None for p in lab.processes)
    engine.down(lab.prefix)  # again: nothing to do, no error
    assert leftovers(lab.prefix) == []


def test_a_failure_while_standing_up_tears_down_what_was_built():
    lab = Lab(plan("prod-hcloud"))
    lab._sinks = lambda: (_ for _ in ()).throw(RuntimeError("planted"))  # fails after every service started
    try:
        with lab:
            raise AssertionError("the lab came up despite the planted failure")
    except RuntimeError:
        pass
    assert leftovers(lab.prefix) == []


def _up() -> tuple[subprocess.Popen, str]:
    runner = subprocess.Popen(
        [sys.executable, "-m", "tools.lab", "up", "--stack", "prod-hcloud"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    for line in runner.stdout:
        if " is up " in line:
            return runner, line.split()[1]
        assert time.monotonic() < deadline, "the lab did not come up within 60s"
    raise AssertionError(f"the runner ended before the lab was up (exit {runner.wait()})")


def test_sigint_tears_the_lab_down():
    runner, prefix = _up()
    assert leftovers(prefix)
    runner.send_signal(signal.SIGINT)
    runner.wait(timeout=30)
    assert leftovers(prefix) == []


def test_a_killed_runner_leaves_a_stale_run_that_down_stale_removes():
    runner, prefix = _up()
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=10)
    assert prefix in engine.stale_runs()
    subprocess.run([sys.executable, "-m", "tools.lab", "down", "--stale"], cwd=ROOT, check=True, capture_output=True)
    assert leftovers(prefix) == []
