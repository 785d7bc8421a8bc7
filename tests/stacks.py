"""Shared helpers: run the program under mocks once per distinct config, and read its firewalls."""

import functools
import json
import subprocess
import sys

from tools.mockrun import ROOT, Run, run_stack

SG = "aws:ec2/securityGroup:SecurityGroup"
RULE_TYPES = {
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "in",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "out",
}


def run(stack: str = "prod", **overrides) -> Run:
    """Run a stack with `kumomta:` overrides given as keyword arguments (cached)."""
    return _cached(stack, json.dumps(overrides, sort_keys=True))


@functools.cache
def _cached(stack: str, overrides: str) -> Run:
    return run_stack(stack, {f"kumomta:{k}": v for k, v in json.loads(overrides).items()})


def plan(*args: str) -> subprocess.CompletedProcess:
    """`python -m tools.plan ARGS` as an operator runs it, from the project root; `--base none` unless given,
    so a test's output doesn't depend on the git history around it."""
    base = [] if "--base" in args else ["--base", "none"]
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", *args, *base],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def group_roles(result: Run) -> dict[str, str]:
    """Security group ID -> role, from the `kumomta-role` tag."""
    return {r.id: r.inputs["tags"]["kumomta-role"] for r in result.of_type(SG)}


def sg_rules(result: Run) -> dict[str, set[tuple]]:
    """Per role: (direction, protocol, port, peer), peer being a CIDR or `sg:<role>`."""
    roles = group_roles(result)
    found: dict[str, set[tuple]] = {"mta": set(), "proxy": set()}
    for reg in result.registrations:
        if reg.type not in RULE_TYPES:
            continue
        i = reg.inputs
        assert i["fromPort"] == i["toPort"], f"{reg.name}: a rule opens one port, not a range"
        sources = [i.get(k) for k in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId", "prefixListId")]
        assert sum(s is not None for s in sources) == 1, f"{reg.name}: exactly one source per rule"
        peer = i.get("cidrIpv4") or i.get("cidrIpv6") or f"sg:{roles[i['referencedSecurityGroupId']]}"
        found[roles[i["securityGroupId"]]].add((RULE_TYPES[reg.type], i["ipProtocol"], int(i["fromPort"]), peer))
    return found
