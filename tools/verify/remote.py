"""Running a script on the hosts themselves: SSM Run Command on AWS, SSH on Hetzner, or
`ip netns exec` into the namespaces of a lab (tools/lab) standing in for the hosts.

Both transports take the same bash script and report, per host, either its standard output
or why it didn't run. One SSM command fans out to every host of a role at once (up to 50
instances per command), so a large fleet costs a few API calls, not one per check.
"""

import contextlib
import ctypes
import math
import shlex
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from tools.verify.checks import Unavailable
from tools.verify.stack import Host

DOCUMENT = "AWS-RunShellScript"
# SSM's terminal invocation states; anything else is still on its way.
DONE = {"Success", "Failed", "Cancelled", "TimedOut"}
SSM_BATCH = 50


@dataclass(frozen=True)
class Outcome:
    """How one host's run went: its output, or why there is none."""

    output: str = ""
    error: str | None = None


def command(script: str) -> str:
    """The shell line both transports run; SSM would use /bin/sh, which lacks /dev/tcp."""
    return f"bash -c {shlex.quote(script)}"


class Ssm:
    """SSM Run Command through the instance role the foundation grants (AmazonSSMManagedInstanceCore)."""

    def __init__(
        self,
        client,
        timeout: float,
        grace: float = 30.0,
        poll: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client, self.timeout, self.grace, self.poll = client, timeout, grace, poll
        self.clock, self.sleep = clock, sleep

    def run(self, hosts: list[Host], script: str) -> dict[str, Outcome]:
        """`timeout` bounds the script; `grace` covers SSM's own delivery of the command."""
        out: dict[str, Outcome] = {}
        for start in range(0, len(hosts), SSM_BATCH):
            out |= self._run_batch(hosts[start : start + SSM_BATCH], script)
        return out

    def _run_batch(self, hosts: list[Host], script: str) -> dict[str, Outcome]:
        try:
            sent = self.client.send_command(
                InstanceIds=[h.instance_id for h in hosts],
                DocumentName=DOCUMENT,
                Comment="kumomta-infra make verify",
                TimeoutSeconds=max(30, math.ceil(self.grace)),
                Parameters={"commands": [command(script)], "executionTimeout": [str(math.ceil(self.timeout) + 5)]},
            )
        except NoCredentialsError:
            raise Unavailable(_NO_CREDENTIALS) from None
        except (ClientError, BotoCoreError) as err:
            return {h.label: Outcome(error=f"SSM send_command failed: {_why(err)}") for h in hosts}
        command_id = sent["Command"]["CommandId"]
        return self._collect(command_id, hosts)

    def _collect(self, command_id: str, hosts: list[Host]) -> dict[str, Outcome]:
        deadline = self.clock() + self.timeout + self.grace
        pending = {h.instance_id: h for h in hosts}
        status = dict.fromkeys(pending, "Pending")
        out: dict[str, Outcome] = {}
        while pending:
            for instance_id, host in list(pending.items()):
                try:
                    found = self.client.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
                except ClientError as err:
                    if err.response["Error"]["Code"] == "InvocationDoesNotExist":
                        continue  # SSM has not registered the invocation yet
                    out[host.label] = Outcome(error=f"SSM get_command_invocation failed: {_why(err)}")
                    del pending[instance_id]
                    continue
                status[instance_id] = found["Status"]
                if found["Status"] in DONE:
                    out[host.label] = _outcome(found)
                    del pending[instance_id]
            if not pending:
                break
            if self.clock() >= deadline:
                self._cancel(command_id, list(pending))
                waited = f"{self.timeout + self.grace:g}s"
                for instance_id, host in pending.items():
                    out[host.label] = Outcome(
                        error=f"no result from SSM within {waited} (last status {status[instance_id]})"
                    )
                break
            self.sleep(self.poll)
        return out

    def _cancel(self, command_id: str, instance_ids: list[str]) -> None:
        """Leave nothing running on the hosts; a failed cancel changes nothing in the report."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.cancel_command(CommandId=command_id, InstanceIds=instance_ids)


class Ssh:
    """The operator's own ssh client, keys and agent; `BatchMode` so it never waits for a password."""

    def __init__(self, user: str, timeout: float, program: str = "ssh"):
        self.user, self.timeout, self.program = user, timeout, program
        self.limit = 2 * timeout + 5  # connecting, then the script

    def run(self, hosts: list[Host], script: str) -> dict[str, Outcome]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = pool.map(lambda h: self._run_one(h, script), hosts)
        return {h.label: o for h, o in zip(hosts, outcomes, strict=True)}

    def _run_one(self, host: Host, script: str) -> Outcome:
        argv = [
            self.program,
            "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={math.ceil(self.timeout)}",
            "-o", "StrictHostKeyChecking=accept-new",
            f"{self.user}@{host.public_ip}",
            command(script),
        ]  # fmt: skip
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.limit, check=False)
        except FileNotFoundError:
            raise Unavailable(
                f"no `{self.program}` on PATH; install an OpenSSH client to run checks on the hosts"
            ) from None
        except subprocess.TimeoutExpired:
            return Outcome(error=f"ssh {self.user}@{host.public_ip}: no result within {self.limit:g}s")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            hint = " (is this machine in adminCidrs?)" if done.returncode == 255 else ""
            return Outcome(error=f"ssh {self.user}@{host.public_ip} failed: {last}{hint}")
        return Outcome(output=done.stdout)


class Netns:
    """A lab's hosts (tools/lab): each label's namespaces on this machine, entered as root: through the
    host's `enter` script when the lab gives one (its files too, as on the host), else `ip netns exec`."""

    def __init__(self, namespaces: dict[str, str], timeout: float, enter: dict[str, str] | None = None):
        self.namespaces, self.timeout, self.enter = namespaces, timeout, enter or {}

    def run(self, hosts: list[Host], script: str) -> dict[str, Outcome]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = pool.map(lambda h: self._run_one(h, script), hosts)
        return {h.label: o for h, o in zip(hosts, outcomes, strict=True)}

    def _run_one(self, host: Host, script: str) -> Outcome:
        ns = self.namespaces.get(host.label)
        if ns is None:
            return Outcome(error=f"the lab has no namespace for {host.label}")
        way_in = [self.enter[host.label]] if host.label in self.enter else ["ip", "netns", "exec", ns]
        argv = [*way_in, "bash", "-c", script]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout + 5, check=False)
        except subprocess.TimeoutExpired:
            return Outcome(error=f"{ns}: no result within {self.timeout + 5:g}s")
        if done.returncode != 0:
            return Outcome(error=f"{ns}: {(done.stderr.strip().splitlines() or [f'exit {done.returncode}'])[-1]}")
        return Outcome(output=done.stdout)


def enter_netns(name: str) -> None:
    """Move this thread, and every thread it starts later, into the named network namespace (setns(2))."""
    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/run/netns/{name}") as f:
        if libc.setns(f.fileno(), clone_newnet) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {name}")


_NO_CREDENTIALS = (
    "boto3 found no AWS credentials; configure them the usual boto3 way (AWS_PROFILE, environment, SSO) "
    "to run checks on the hosts"
)


def _outcome(invocation: dict) -> Outcome:
    if invocation["Status"] == "Success":
        return Outcome(output=invocation.get("StandardOutputContent", ""))
    detail = (invocation.get("StandardErrorContent") or "").strip().splitlines()
    why = f": {detail[-1]}" if detail else ""
    return Outcome(error=f"SSM command {invocation['Status']} (exit {invocation.get('ResponseCode', '?')}){why}")


def _why(err: Exception) -> str:
    if isinstance(err, ClientError):
        return f"{err.response['Error']['Code']}: {err.response['Error'].get('Message', '')}"
    return str(err)
