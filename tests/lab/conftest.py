"""The lab needs root, `ip netns` and the Debian tools `.ci/run` installs; without them each test says which is missing."""

import os
import shutil
import subprocess
import time

import pytest

from tools.lab import checks, engine
from tools.lab.lab import Lab
from tools.lab.stack import plan

TOOLS = ("ip", "nft", "nginx", "dnsmasq", "openssl", "unshare", "nsenter", "ss", "sshd", "ssh", "sudo", "useradd")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, nftables); run make test as root, as .ci/run does"
    absent = [t for t in TOOLS if shutil.which(t) is None]
    if absent:
        return f"the lab needs {', '.join(absent)} (.ci/run installs them)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).returncode != 0:
        return "`ip netns` does not work on this machine"
    if subprocess.run(["/usr/bin/python3", "-c", "import boto3"], capture_output=True, check=False).returncode != 0:
        return "the lab's AWS hosts run kumomta-sync with Debian's python3-boto3 (.ci/run installs it)"
    return None


MISSING = _missing()
needs_lab = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


class Ran:
    """A lab with every check run once; tests read its rows by group."""

    def __init__(self, lab: Lab, rows, seconds: float):
        self.lab, self.rows, self.seconds = lab, rows, seconds

    def group(self, name: str):
        rows = [r for r in self.rows if r.group == name]
        assert rows, f"no {name} checks ran"
        return rows

    def failures(self, name: str) -> list[str]:
        return [f"{r.check}: {r.reason}" for r in self.group(name) if r.status.value == "fail"]


def ran(stack: str, overrides: dict | None = None, run=checks.run_all):
    """Stand the stack up, run `run` on it (every check of checks.py unless told otherwise; None: nothing),
    yield the rows, tear down (also on failure)."""
    if MISSING:
        pytest.skip(MISSING)
    for prefix in engine.stale_runs():
        engine.down(prefix)
    planned = plan(stack, overrides)
    with Lab(planned, overrides=overrides) as lab:
        started = time.monotonic()
        rows = run(lab) if run else []
        yield Ran(lab, rows, time.monotonic() - started)
