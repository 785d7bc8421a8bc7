"""The command: exit codes, the rows it prints, the --json shape, and where the outputs come from."""

import json

import boto3
import pytest

from tests.verify import stacks
from tests.verify.aws_replay import group_id, replay
from tests.verify.hetzner_api import RECORDED
from tools.verify.__main__ import main


def test_exit_0_without_drift_then_1_with_a_public_8000_and_the_json_says_why(aws, tmp_path, capsys):
    """The only test whose moto resources are tagged `prod`: it runs the command as an operator would."""
    ec2 = boto3.client("ec2", region_name="eu-central-1")
    name = "prod"
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(replay(ec2, stacks.program(), name)))
    report = tmp_path / "report.json"
    args = ["--stack", name, "--only", "drift", "--outputs", str(outputs), "--json", str(report)]

    assert main(args) == 0
    clean = json.loads(report.read_text())
    assert clean["ok"] is True and clean["summary"] == {"pass": 6, "fail": 0, "skipped": 0}

    ec2.authorize_security_group_ingress(
        GroupId=group_id(ec2, name, "mta"),
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    assert main(args) == 1
    drifted = json.loads(report.read_text())
    assert set(drifted) == {"stack", "ok", "summary", "checks"}
    assert (drifted["stack"], drifted["ok"], drifted["summary"]) == (name, False, {"pass": 5, "fail": 1, "skipped": 0})
    (failure,) = [c for c in drifted["checks"] if c["status"] == "fail"]
    assert failure == {
        "group": "drift",
        "check": "mta firewall matches the matrix",
        "status": "fail",
        "reason": failure["reason"],
        "details": ["extra: 8000/tcp in from 0.0.0.0/0 on mta"],
    }
    assert failure["reason"].endswith(": 1 differences from the matrix")
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "5 passed, 1 failed, 0 skipped"
    assert "                 extra: 8000/tcp in from 0.0.0.0/0 on mta" in printed
    assert any(line.startswith("FAIL     drift   mta firewall matches the matrix") for line in printed)


def test_skips_alone_exit_1_because_nothing_was_verified_and_each_says_what_would_enable_it(tmp_path, capsys):
    outputs = RECORDED / "hcloud_outputs.json"
    report = tmp_path / "report.json"
    assert main(["--stack", "prod-hcloud", "--only", "inside", "--outputs", str(outputs), "--json", str(report)]) == 1
    assert json.loads(report.read_text())["ok"] is False
    checks = json.loads(report.read_text())["checks"]
    assert {c["status"] for c in checks} == {"skipped"}
    assert "add this machine's network to kumomta:adminCidrs" in checks[0]["reason"]
    assert "SKIPPED  inside" in capsys.readouterr().out


def test_without_the_pulumi_cli_one_line_says_to_pass_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["--stack", "prod"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "verify: the pulumi CLI is not installed; pass --outputs FILE "
        "(the JSON of `pulumi stack output --json --show-secrets --stack prod`)\n"
    )


def test_by_default_the_outputs_come_from_pulumi_stack_output(tmp_path, monkeypatch):
    fake = tmp_path / "pulumi"
    fake.write_text(f'#!/bin/sh\necho "$@" > "$0.argv"\ncat {RECORDED / "hcloud_outputs.json"}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert main(["--stack", "prod-hcloud", "--only", "inside", "--json", str(tmp_path / "r.json")]) == 1  # all skipped
    assert (tmp_path / "pulumi.argv").read_text() == "stack output --json --show-secrets --stack prod-hcloud\n"


@pytest.mark.parametrize("bad", [["--only", "probes,everything"], ["--timeout", "0"]])
def test_bad_options_are_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--stack", "prod", *bad])
    assert stop.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_a_bad_webhook_flag_is_refused_like_bad_config(capsys):
    outputs = RECORDED / "hcloud_outputs.json"
    assert main(["--stack", "prod-hcloud", "--outputs", str(outputs), "--webhook-url", "http://app.example.com"]) == 2
    assert capsys.readouterr().err == "verify: 'http://app.example.com' is not an https:// URL\n"
