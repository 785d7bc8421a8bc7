"""The lab needs root, `ip netns` and the Debian tools `.ci/run` installs; without them each test says which is missing."""

import os
import shutil
import subprocess
import time

import pytest

from tools.lab import checks, day2, engine
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
        self.plan = lab.plan
        """The plan the checks ran on (a day-2 change gives the lab a new one)."""
        self.checked = time.time()

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
    # KUMOMTA_SBIN: KumoMTA's own kumod and proxy-server instead of the stand-ins (README, "The lab").
    with Lab(planned, sbin=os.environ.get("KUMOMTA_SBIN") or None, overrides=overrides) as lab:
        started = time.monotonic()
        rows = run(lab) if run else []
        yield Ran(lab, rows, time.monotonic() - started)


# Stacks stood up once per test session; the day-2 scenarios run on them after every check has.
STACKS = {
    "aws-prod": ("prod", None, True),
    "hcloud-prod": ("prod-hcloud", None, True),
    # A fleet, with SSH open to an admin network so "22 only from admin" is tested both ways.
    "hcloud-3+4-admin": (
        "prod-hcloud",
        {
            "kumomta:mtaHosts": ["mta1", "mta2", "mta3"],
            "kumomta:proxyHosts": ["proxy1", "proxy2", "proxy3", "proxy4"],
            "kumomta:adminCidrs": ["198.51.100.7/32"],
        },
        False,
    ),
}


@pytest.fixture(scope="session")
def stack_lab(request):
    """The stack named by the test's `stack_lab` parameter, checked, then changed (day 2), once for every test.
    `plan` and `checked` are the plan the checks ran on and when they ended."""
    stack, overrides, changes = STACKS[request.param]
    for done in ran(stack, overrides, run=None):
        done.plan = done.lab.plan
        done.rows = checks.run_all(done.lab)
        done.checked = time.time()
        if changes:
            done.rows += day2.run(done.lab)
        yield done
