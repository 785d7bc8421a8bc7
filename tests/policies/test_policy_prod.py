"""The real program under mocks, both clouds, through the pack over gRPC: no MANDATORY violation.

A control run plants one public rule in the same registrations, so a pipeline that judged
nothing could not pass.
"""

import base64
import copy
import functools
import gzip
from pathlib import Path

import pytest
import yaml

from tests.policies import material
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
    """Every resource, and the stack resource with its exports, as the engine hands them to the pack."""
    run = mockrun.run_stack(stack)
    return [*run.registrations, run.root]


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


# Private keys. The hosts' user data is what the program renders, gzip+base64 on both clouds: plain on AWS,
# a secret on Hetzner (it carries the host's own SSH host key, which pins the day-2 push).
HOSTS = ("aws:ec2/instance:Instance", "hcloud:index/server:Server")


def hosts(regs) -> list:
    return [reg for reg in regs if reg.type in HOSTS]


def test_the_stack_exports_and_secret_user_data_reach_the_pack_marked_secret():
    """What the pack tells secrets by: the engine's secret map, here in the mock run's registrations."""
    (root,) = [reg for reg in registrations("prod-hcloud") if reg.type == "pulumi:pulumi:Stack"]
    assert root.state["injectToken"].keys() == material.secret("").keys()
    by_name = {reg.name: reg for reg in hosts(registrations("prod-hcloud"))}
    for name in ("mta-server", "proxy-server"):
        assert by_name[name].inputs["userData"].keys() == material.secret("").keys()


def with_host_key(user_data, key: str):
    """The host's user data with cloud-init's ssh_keys holding the key, encoded and marked as it was."""
    secret = isinstance(user_data, dict)
    text = user_data["value"] if secret else user_data
    config = yaml.safe_load(gzip.decompress(base64.b64decode(text)))
    config["ssh_keys"] = {"ed25519_private": key}
    text = base64.b64encode(gzip.compress(("#cloud-config\n" + yaml.safe_dump(config)).encode())).decode()
    return material.secret(text) if secret else text


@pytest.mark.parametrize("stack", STACKS)
def test_a_host_key_planted_in_each_hosts_user_data_is_caught_only_where_it_is_plain(stack):
    regs = copy.deepcopy(registrations(stack))
    plain = {}
    for reg in hosts(regs):
        field = "userDataBase64" if "userDataBase64" in reg.inputs else "userData"
        reg.inputs[field] = with_host_key(reg.inputs[field], material.key("openssh"))
        if isinstance(reg.inputs[field], str):
            plain[reg.urn] = f"{reg.name} input {field}: holds PEM private key material in plain text: OpenSSH"
    found = [v for v in analyze(regs, stack, engine_config(stack)) if v.level == "mandatory"]
    assert len(plain) == (2 if stack == "prod" else 0)  # Hetzner's user data is a secret already
    assert sorted((v.policy, v.urn) for v in found) == [("no-plain-private-keys", urn) for urn in sorted(plain)]
    assert all(plain[v.urn] in v.message for v in found)
    assert all("found after decoding base64 then gzip" in v.message for v in found)


@pytest.mark.parametrize("stack", STACKS)
def test_a_private_key_exported_in_the_same_run_is_caught_unless_it_is_a_secret(stack):
    regs = copy.deepcopy(registrations(stack))
    (root,) = [reg for reg in regs if reg.type == "pulumi:pulumi:Stack"]
    root.state.update(dkimPrivateKey=material.key("rsa"), dkimKeySecret=material.secret(material.key("rsa")))
    found = [v for v in analyze(regs, stack, engine_config(stack)) if v.level == "mandatory"]
    assert [(v.policy, v.urn) for v in found] == [("no-plain-private-keys-in-stack-outputs", root.urn)]
    assert "(the stack) output dkimPrivateKey: holds PEM private key material" in found[0].message


def test_the_pack_runner_says_a_broken_stack_file_in_one_line(capsys):
    assert policy_run.main(["--stack", "no-such-stack"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["Pulumi.no-such-stack.yaml: no such file (the stacks here are prod, prod-hcloud)"]
