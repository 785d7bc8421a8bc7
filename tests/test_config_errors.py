"""A bad stack value stops the run with one line naming the key and the reason, and no traceback."""

import uuid
from pathlib import Path

import pulumi
import pytest
import yaml

from tests.stacks import plan, run
from tools.mockrun import ROOT, run_stack, stack_config

BAD = [
    ({"kumomta:ping8Cidrs": ["203.0.113.300/32"]}, "kumomta:ping8Cidrs[0]: '203.0.113.300/32' is not a valid CIDR"),
    ({"kumomta:trustedCidrs": ["10.0.0.1/8"]}, "kumomta:trustedCidrs[0]: '10.0.0.1/8' is not a valid CIDR"),
    ({"kumomta:mtaHosts": []}, "kumomta:mtaHosts: List should have at least 1 item"),
    ({"kumomta:proxyHosts": ["px", "px"]}, "kumomta:proxyHosts: px is listed twice"),
    ({"kumomta:proxyMetricsPort": 70000}, "kumomta:proxyMetricsPort: Input should be less than or equal to 65535"),
    ({"kumomta:proxyMetricsPort": 0}, "kumomta:proxyMetricsPort: Input should be greater than or equal to 1"),
    ({"kumomta:monitoringCidrs": ["0.0.0.0/0"]}, "kumomta:monitoringCidrs[0]: 0.0.0.0/0 would open this port"),
    ({"kumomta:adminCidrs": ["::/0"]}, "kumomta:adminCidrs[0]: ::/0 would open this port to the whole internet"),
    ({"kumomta:cloud": "gcp"}, "kumomta:cloud: Input should be 'aws' or 'hcloud'"),
    ({"kumomta:mtaHost": ["mta"]}, "kumomta:mtaHost: is not a known setting (check the spelling)"),
    ({"kumomta:dns": {"provider": "route53"}}, "kumomta:dns.zoneId: is required"),
    ({"kumomta:aws": {"vpcId": "vpc-1"}}, "kumomta:aws: give vpcId and subnetId together"),
    ({"kumomta:proxyHosts": ["mta"]}, "kumomta:proxyHosts: 'mta' is also an MTA label"),
]


@pytest.mark.parametrize(("override", "message"), BAD, ids=[m.split(":")[1] for _, m in BAD])
def test_the_program_reports_one_line_without_traceback(override, message):
    key = next(iter(override)).split(":")[1]
    with pytest.raises(pulumi.RunError) as caught:
        run(**{key: override[next(iter(override))]})
    text = str(caught.value)
    assert text.startswith(message)
    assert "\n" not in text and "Traceback" not in text


@pytest.fixture
def bad_stack():
    """A throw-away Pulumi.<name>.yaml next to the real ones, removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    path = ROOT / f"Pulumi.{name}.yaml"

    def write(**overrides) -> str:
        config = {**stack_config("prod"), **overrides}
        path.write_text(yaml.safe_dump({"config": config}))
        return name

    yield write
    path.unlink(missing_ok=True)


@pytest.mark.parametrize(("override", "message"), BAD[:4] + BAD[6:8], ids=lambda v: str(v)[:30])
def test_the_plan_exits_2_with_the_same_line(bad_stack, override, message):
    stack = bad_stack(**override)
    done = plan("--stack", stack)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"Pulumi.{stack}.yaml: {message}")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_missing_stack_file_is_a_config_error():
    done = plan("--stack", "no-such-stack")
    assert done.returncode == 2
    assert "Pulumi.no-such-stack.yaml" in done.stderr and "Traceback" not in done.stderr


def test_secure_values_are_left_out_of_the_offline_config(tmp_path: Path):
    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  kumomta:cloud: aws\n  kumomta:injectToken:\n    secure: AAAB\n")
    assert stack_config("s", root=tmp_path) == {"kumomta:cloud": "aws"}


@pytest.mark.parametrize(
    ("sources", "line"),
    [
        (["0.0.0.0/1"], "kumomta:monitoringCidrs[0]: 0.0.0.0/1 would open this port to the internet"),
        ([f"{i}.0.0.0/17" for i in range(11, 13)], "kumomta:monitoringCidrs: these 2 networks together cover"),
    ],
)
def test_settings_refuse_what_the_pack_would_at_the_first_line_the_operator_sees(bad_stack, sources, line):
    """The pack counts a source as public from an IPv4 /16's worth of routable addresses, adding sources up
    (policies/kumoguard/cidr.py); settings stop such a stack before any resource is planned."""
    done = plan("--stack", bad_stack(**{"kumomta:monitoringCidrs": sources}))
    assert done.returncode == 2
    assert line in done.stderr and "Traceback" not in done.stderr


def test_an_aws_stack_without_a_region_is_one_line_too(monkeypatch):
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):  # the provider's fallbacks
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(pulumi.RunError) as caught:
        run_stack("prod", {"aws:region": ""})
    assert str(caught.value) == "aws:region: is required; the hosts read their configuration from SSM there"
