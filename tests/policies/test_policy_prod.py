"""The real program under mocks, both clouds, through the pack over gRPC: no MANDATORY violation.

A control run plants one public rule in the same registrations, so a pipeline that judged
nothing could not pass.
"""

import copy
import functools
from pathlib import Path

import pytest

from tools import mockrun, policy_run
from tools.policy_run import analyze

ROOT = Path(__file__).resolve().parents[2]
STACKS = ["prod", "prod-hcloud"]


def registrations(stack: str):
    if not (ROOT / f"Pulumi.{stack}.yaml").exists():
        pytest.skip(f"Pulumi.{stack}.yaml is not in this checkout")
    return _run(stack)


@functools.cache
def _run(stack: str):
    return mockrun.run_stack(stack).registrations


def engine_config(stack: str) -> dict[str, str]:
    return mockrun.engine_config(mockrun.stack_config(stack))


@pytest.mark.parametrize("stack", STACKS)
def test_the_legitimate_matrix_draws_no_mandatory_violation(stack):
    found = analyze(registrations(stack), stack, engine_config(stack))
    assert [str(v) for v in found if v.level == "mandatory"] == []


@pytest.mark.parametrize("stack", STACKS)
def test_a_public_metrics_rule_planted_in_the_same_run_is_caught(stack):
    regs = copy.deepcopy(registrations(stack))
    plant(regs)
    found = analyze(regs, stack, engine_config(stack))
    assert {v.policy for v in found if v.level == "mandatory"} == {"no-public-metrics"}


def plant(regs) -> None:
    """Open the proxy's metrics port to the world on its own firewall or group."""
    for reg in regs:
        if reg.type == "hcloud:index/firewall:Firewall" and reg.inputs["labels"]["kumomta-role"] == "proxy":
            rule = {
                "direction": "in",
                "protocol": "tcp",
                "port": "9101",
                "sourceIps": ["0.0.0.0/0"],
                "description": "x",
            }
            reg.inputs["rules"].append(rule)
            reg.state["rules"] = reg.inputs["rules"]
            return
        if reg.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" and reg.inputs["fromPort"] == 9101:
            reg.inputs["cidrIpv4"] = reg.state["cidrIpv4"] = "0.0.0.0/0"
            return
    raise AssertionError("no proxy metrics rule to plant next to")


def test_the_make_plan_entry_point_prints_the_tally_and_exits_0_on_prod(capsys):
    assert policy_run.main(["--stack", "prod"]) == 0
    assert capsys.readouterr().out.endswith("Policy pack: 0 mandatory, 0 advisory violation(s)\n")


def test_report_exits_1_on_any_mandatory_violation():
    advisory = policy_run.Violation("role-tagged", "advisory", "urn:a", "tag it")
    mandatory = policy_run.Violation("no-public-ssh", "mandatory", "urn:b", "Open\nto all")
    assert policy_run.report([advisory])[1] == 0
    text, status = policy_run.report([advisory, mandatory])
    assert status == 1
    assert text.splitlines() == [
        "[advisory] role-tagged: tag it",
        "[mandatory] no-public-ssh: Open to all",
        "Policy pack: 1 mandatory, 1 advisory violation(s)",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_issue_10s_bypass_planted_in_the_same_run_is_caught(stack):
    """`kumomta:proxyMetricsPort: "+9200"` with monitoring sources 0.0.0.0/1 and 128.0.0.0/1: each half is
    public alone, and the port is read from the stack setting however it is written."""
    regs = copy.deepcopy(registrations(stack))
    for reg in regs:
        if reg.type == "hcloud:index/firewall:Firewall" and reg.inputs["labels"]["kumomta-role"] == "proxy":
            rule = next(r for r in reg.inputs["rules"] if r.get("port") == "9101")
            rule.update(port="9200", sourceIps=["0.0.0.0/1", "128.0.0.0/1"])
            reg.state["rules"] = reg.inputs["rules"]
        if reg.type == "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" and reg.inputs["fromPort"] == 9101:
            twin = copy.deepcopy(reg)
            for planted, half in ((reg, "0.0.0.0/1"), (twin, "128.0.0.0/1")):
                planted.inputs.update(fromPort=9200.0, toPort=9200.0, cidrIpv4=half)
                planted.state.update(planted.inputs)
            twin.urn += "-twin"
            regs.append(twin)
            break
    config = {**engine_config(stack), "kumomta:proxyMetricsPort": "+9200"}
    found = [v for v in analyze(regs, stack, config) if v.level == "mandatory"]
    assert {v.policy for v in found} == {"no-public-metrics"}
    assert all(
        any(f"9200/tcp (a metrics port) to public source {half}." in v.message for v in found)
        for half in ("0.0.0.0/1", "128.0.0.0/1")
    )
