"""The stack under test: its config (for the matrix) and its outputs (for the hosts to check).

Config comes from Pulumi.<stack>.yaml exactly as the program reads it, so the expected
firewall is the one `pulumi up` would build today. Hosts come from the stack outputs, so the
checks reach the machines that really exist.
"""

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from components.matrix import Role
from components.settings import ConfigError, Settings
from tools.mockrun import ROOT, StackFileError, settings_of, stack_config


class StackError(Exception):
    """The stack's config or outputs can't be read; the text is one line for the operator."""


@dataclass(frozen=True)
class Host:
    """One entry of the `hosts` stack output."""

    label: str
    role: Role
    fqdn: str
    public_ip: str
    private_ip: str
    instance_id: str
    config_version: str | None = None
    """The version of its configuration `pulumi up` last published (the day-2 channel's)."""
    public_ipv6: str | None = None

    @property
    def sending_ips(self) -> list[str]:
        """The addresses receivers see mail from (a proxy's): SPF names them, and each one's PTR names the host."""
        return [a for a in (self.public_ip, self.public_ipv6) if a]


@dataclass(frozen=True)
class Ports:
    """Where the checked services listen: the guide's ports, unless a caller points elsewhere."""

    https: int = 443
    socks: int = 5000
    kumod: int = 8000
    smtp: int = 25


GUIDE_PORTS = Ports()


@dataclass(frozen=True)
class Stack:
    name: str
    settings: Settings
    hosts: tuple[Host, ...]
    aws_region: str | None
    """`aws:region` of the stack: the resources live there, whatever the shell's default region is."""
    dkim: dict[str, str] = field(default_factory=dict)
    """The `dkim` output: each DKIM record's name and the value the stack's key makes."""

    def of_role(self, role: Role) -> list[Host]:
        return [h for h in self.hosts if h.role == role]


def load(name: str, outputs_file: Path | None, root: Path = ROOT) -> Stack:
    try:
        values = stack_config(name, root)
        settings = settings_of(values)
    except (StackFileError, ConfigError) as err:
        raise StackError(str(err).replace("\n", "; ")) from None
    outputs = _read_file(outputs_file) if outputs_file else _pulumi_outputs(name)
    found = hosts(outputs)  # first: it says so when the outputs are not a mapping
    dkim = outputs.get("dkim") if isinstance(outputs.get("dkim"), dict) else {}
    return Stack(name, settings, found, values.get("aws:region"), {str(k): str(v) for k, v in dkim.items()})


def hosts(outputs: dict) -> tuple[Host, ...]:
    """The `hosts` output, MTAs first, each group by label."""
    entries = outputs.get("hosts") if isinstance(outputs, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise StackError("the stack outputs have no `hosts`; has `pulumi up` run for this stack?")
    try:
        found = [
            Host(
                label=label,
                role=Role(entry["role"]),
                fqdn=entry["fqdn"],
                public_ip=entry["publicIp"],
                private_ip=entry["privateIp"],
                instance_id=str(entry["instanceId"]),
                config_version=entry.get("configVersion"),
                public_ipv6=entry.get("publicIpv6") or None,
            )
            for label, entry in entries.items()
        ]
    except (KeyError, TypeError, ValueError) as err:
        raise StackError(f"the `hosts` output is not what this tool expects ({type(err).__name__}: {err})") from None
    return tuple(sorted(found, key=lambda h: (list(Role).index(h.role), h.label)))


def _read_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise StackError(f"{path}: {err.strerror}") from None
    except ValueError as err:
        raise StackError(f"{path}: not JSON ({err})") from None


def _pulumi_outputs(name: str) -> dict:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", name]
    if shutil.which("pulumi") is None:
        raise StackError(f"the pulumi CLI is not installed; pass --outputs FILE (the JSON of `{' '.join(command)}`)")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no error text"])[-1]
        raise StackError(f"`{' '.join(command)}` failed: {last}")
    try:
        return json.loads(done.stdout)
    except ValueError as err:
        raise StackError(f"`{' '.join(command)}` printed no JSON ({err})") from None
