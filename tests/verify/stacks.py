"""Build the tool's view of a stack in tests: a stack file's config (plus overrides) and some outputs."""

import functools
import json
from typing import Any

from components.settings import Settings
from tools.mockrun import Run, run_stack, settings_of, stack_config
from tools.verify.stack import Stack, hosts


def program(stack: str = "prod", **overrides: Any) -> Run:
    """The program's registrations for a stack file plus `kumomta:` overrides (cached: runs are pure)."""
    return _program(stack, json.dumps(overrides, sort_keys=True))


@functools.cache
def _program(stack: str, overrides: str) -> Run:
    return run_stack(stack, {f"kumomta:{k}": v for k, v in json.loads(overrides).items()})


def settings(stack: str = "prod", **overrides: Any) -> Settings:
    values = {**stack_config(stack), **{f"kumomta:{k}": v for k, v in overrides.items()}}
    return settings_of(values)


def stack(
    outputs: dict, file: str = "prod", name: str | None = None, region: str | None = "eu-central-1", **overrides: Any
) -> Stack:
    """The stack `name` (default: the file's) configured as Pulumi.<file>.yaml plus overrides."""
    return Stack(name or file, settings(file, **overrides), hosts(outputs), region)


def outputs(**entries: tuple[str, str, str, str]) -> dict:
    """`label=(role, publicIp, privateIp, instanceId)` as the `hosts` stack output."""
    hosts = {}
    for label, (role, public, private, instance) in entries.items():
        fqdn = f"{label}.yourdomain.com"
        hosts[label] = {"role": role, "fqdn": fqdn, "publicIp": public, "privateIp": private, "instanceId": instance}
    return {"hosts": hosts}
