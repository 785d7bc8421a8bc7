"""The program wires the renderers in: the token as a secret, SSM on AWS, user data on Hetzner."""

import base64
import contextlib
import gzip
import io
import json

import pytest
import yaml

from components.bootstrap import nginx
from components.settings import ConfigError
from tests.bootstrap.conftest import TOKEN, settings
from tests.stacks import run
from tools import plan

SECRET = "4dabf18193072939515e22adb298388d"  # Pulumi's signature key of a secret value
PARAMETER = "aws:ssm/parameter:Parameter"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def _secret(value) -> str:
    """The plain value of an input that must be secret; fails if it is not."""
    assert isinstance(value, dict) and SECRET in value, "expected a secret input"
    return value["value"]


def _generated(result) -> str:
    (password,) = result.of_type("random:index/randomPassword:RandomPassword")
    assert password.inputs["special"] is False and password.inputs["length"] == 48
    return password.state["result"]


def _aws_user_data(result, name: str) -> dict:
    instance = result.by_name(f"{name}-instance")
    return yaml.safe_load(gzip.decompress(base64.b64decode(instance.inputs["userDataBase64"])))


def _files(doc: dict) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


def test_aws_token_lives_in_a_secure_string_only_the_mta_role_reads():
    result = run()
    token = _generated(result)
    (parameter,) = result.of_type(PARAMETER)
    assert parameter.inputs["type"] == "SecureString"
    assert _secret(parameter.inputs["value"]) == token
    (policy,) = result.of_type(ROLE_POLICY)
    assert policy.inputs["role"] == result.by_name("mta-role").id
    statement = json.loads(policy.inputs["policy"])["Statement"]
    assert statement == [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": parameter.state["arn"]}]


def test_aws_user_data_names_the_parameter_and_holds_no_token():
    result = run()
    token = _generated(result)
    for name in ("mta", "proxy"):
        raw = gzip.decompress(base64.b64decode(result.by_name(f"{name}-instance").inputs["userDataBase64"]))
        assert token.encode() not in raw
    doc = _aws_user_data(result, "mta")
    unit = _files(doc)["/etc/systemd/system/kumomta-token.service"]
    assert "kumomta-token eu-central-1 /kumomta/prod/mta/inject-token /etc/nginx/kumomta-bearer.map" in unit


def test_injected_token_replaces_the_generated_one():
    result = run(injectToken=TOKEN)
    assert not result.of_type("random:index/randomPassword:RandomPassword")
    (parameter,) = result.of_type(PARAMETER)
    assert _secret(parameter.inputs["value"]) == TOKEN
    assert result.outputs["injectToken"] == TOKEN


def test_token_is_a_stack_output():
    result = run()
    assert result.outputs["injectToken"] == _generated(result)


def test_hetzner_mta_user_data_is_secret_and_carries_the_token():
    result = run("prod-hcloud")
    token = _generated(result)
    doc = yaml.safe_load(_secret(result.by_name("mta-server").inputs["userData"]))
    assert _files(doc)["/etc/nginx/kumomta-bearer.map"] == nginx.token_map_line(token)
    proxy = result.by_name("proxy-server").inputs["userData"]
    assert isinstance(proxy, str) and token not in proxy


def test_mta_sends_through_the_proxy_by_its_addresses():
    aws, hcloud = run(), run("prod-hcloud")
    aws_policy = _files(_aws_user_data(aws, "mta"))["/opt/kumomta/etc/policy/init.lua"]
    private = aws.by_name("proxy-eni").state["privateIp"]
    assert f"server = '{private}:5000'" in aws_policy
    assert f"source_address = '{private}'" in aws_policy  # the EIP is NAT, not on the interface
    server = hcloud.by_name("proxy-server").state
    hcloud_doc = yaml.safe_load(_secret(hcloud.by_name("mta-server").inputs["userData"]))
    hcloud_policy = _files(hcloud_doc)["/opt/kumomta/etc/policy/init.lua"]
    assert f"server = '{server['networks'][0]['ip']}:5000'" in hcloud_policy
    assert f"source_address = '{server['ipv4Address']}'" in hcloud_policy
    assert "ehlo_domain = 'proxy.yourdomain.com'" in hcloud_policy


def test_proxy_host_firewall_opens_5000_to_the_mta_subnet_only():
    aws, hcloud = run(), run("prod-hcloud")
    docs = {
        "aws": _aws_user_data(aws, "proxy"),
        "hcloud": yaml.safe_load(hcloud.by_name("proxy-server").inputs["userData"]),
    }
    subnets = {
        "aws": aws.by_name("mta-subnet").inputs["cidrBlock"],
        "hcloud": hcloud.by_name("mta-subnet").inputs["ipRange"],
    }
    for cloud, doc in docs.items():
        rules = [line.strip() for line in _files(doc)["/etc/nftables.conf"].splitlines() if "dport 5000" in line]
        assert rules == [f'ip saddr {subnets[cloud]} tcp dport 5000 accept comment "in-tcp-5000-mta-hosts"']


def test_plan_never_prints_the_token(tmp_path):
    token = _generated(run())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert plan.main(["--stack", "prod", "--json", str(tmp_path / "plan.json")]) == 0
    assert token not in out.getvalue()
    assert token not in (tmp_path / "plan.json").read_text()
    assert "inject-token" in out.getvalue()  # the resources are there, their values are not


def test_a_bad_injected_token_is_refused_without_echoing_it():
    bad = "has spaces, so Nginx could not hold it as a key 0123456789"
    with pytest.raises(ConfigError) as refused:
        settings("aws", injectToken=bad)
    assert str(refused.value).startswith("kumomta:injectToken: must be 32 to 128")
    assert bad not in str(refused.value)
