"""The day-2 channel in the lab: each host gets its bundle the way it would from `pulumi up`.

AWS: `up` writes the SSM parameters the program registers (each host's bundle, the secrets it
names). Here they go to a moto server standing for SSM at `ssm.<region>.amazonaws.com` in the lab's
internet (HTTPS under the lab's CA, resolved by the lab's resolver), written from the deploy node.
Each host polls with its real kumomta-sync.service (kumomta-sync with Debian's boto3, credentials
from the metadata service's instance role, kumomta-apply underneath): `tick` is the timer firing,
through the host's own `systemctl start`, so what runs is the unit the host has.

Hetzner: `up` runs the registered `command:remote:Command` of each host whose bundle changed: here
the real OpenSSH client on the deploy node (the first address of `deployCidrs`) connects as the
registered user with the stack's deploy key, pinning the registered host key (StrictHostKeyChecking
with only that key known), runs the registered command, and hands the bundle on stdin. The host's
sshd forces its own command (`sudo -n kumomta-apply --wait-boot 1200`) whatever is asked.
"""

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.lab.stack import Host, Plan

TICK_TIMEOUT = 120.0
PUSH_TIMEOUT = 120.0


@dataclass(frozen=True)
class Delivery:
    """One host's bundle delivered: how long it took, how it ended, what the host said."""

    label: str
    channel: str  # "ssm" (a timer tick: kumomta-sync and kumomta-apply) | "ssh" (the push)
    code: int
    seconds: float
    output: str
    apply_seconds: float | None = None
    """AWS: the part kumomta-apply took (it is timed on the host); None when it did not run."""


def changed_parameters(old: Plan | None, new: Plan) -> tuple[dict, list[str]]:
    """What `up` writes to SSM: every parameter that is new or changed, and the names it deletes."""
    before = old.parameters if old else {}
    put = {name: {"type": p.type, "value": p.value} for name, p in new.parameters.items() if before.get(name) != p}
    return put, sorted(set(before) - set(new.parameters))


def publish(deploy_ns: str, endpoint: str, ca: Path, region: str, put: dict, delete: list[str], work: Path) -> float:
    """Write and delete SSM parameters from the deploy node; the seconds it took."""
    request = work / f"ssm-{time.time_ns()}.json"
    request.write_text(json.dumps({"put": put, "delete": delete}))
    started = time.monotonic()
    done = subprocess.run(
        ["ip", "netns", "exec", deploy_ns, sys.executable, "-m", "tools.lab.standins.ssm_put", endpoint, str(ca),
         region, str(request)], capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ChannelError(f"writing SSM parameters failed: {(done.stderr or done.stdout).strip()[-600:]}")
    return time.monotonic() - started


def tick(enter: Path, label: str, log: Path, applies: Path) -> Delivery:
    """kumomta-sync.timer fires on the host: `systemctl start kumomta-sync.service` (a oneshot) runs to its end."""
    seen = _lines(applies)
    offset = log.stat().st_size if log.exists() else 0
    started = time.monotonic()
    done = subprocess.run([str(enter), "systemctl", "start", "kumomta-sync.service"], capture_output=True, text=True,
                          timeout=TICK_TIMEOUT, check=False)  # fmt: skip
    seconds = time.monotonic() - started
    output = (log.read_bytes()[offset:].decode(errors="replace") if log.exists() else "") + done.stderr
    runs = [r for r in _lines(applies)[len(seen) :] if "--check" not in r["args"]]
    apply_seconds = sum(float(r["end"]) - float(r["start"]) for r in runs) if runs else None
    return Delivery(label, "ssm", done.returncode, seconds, output.strip(), apply_seconds)


def push(deploy_ns: str, host: Host, work: Path) -> Delivery:
    """`command:remote:Command` as registered: OpenSSH from the deploy node, the host key pinned."""
    p = host.push
    key, known = work / f"{host.label}-deploy-key", work / f"{host.label}-known_hosts"
    key.touch(mode=0o600)
    key.write_text(p.private_key)
    known.write_text(f"{p.host} {p.host_key}\n")
    argv = [
        "ip", "netns", "exec", deploy_ns, "ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"{p.user}@{p.host}", p.command,
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(argv, input=p.stdin, capture_output=True, text=True, timeout=PUSH_TIMEOUT, check=False)
    seconds = time.monotonic() - started
    return Delivery(host.label, "ssh", done.returncode, seconds, (done.stdout + done.stderr).strip())


def changed_pushes(old: Plan | None, new: Plan) -> list[Host]:
    """The hosts `up` pushes to: new servers, and those whose command, target or stdin (the bundle) changed.

    The deploy key is the same key in every `up` (the tls provider keeps it in the state); under the
    mocks its OpenSSH text differs from run to run (the format's random check words), so it is left out."""
    before = {h.label: _what(h) for h in old.hosts} if old else {}
    return [h for h in new.hosts if h.push is not None and before.get(h.label) != _what(h)]


def _what(host: Host) -> tuple | None:
    p = host.push
    return None if p is None else (p.host, p.user, p.host_key, p.command, p.stdin)


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class ChannelError(Exception):
    pass
