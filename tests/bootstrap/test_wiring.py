"""The program wires the day-2 channel in: each host's bundle in its own SSM parameter on AWS, pushed over SSH with
a pinned host key on Hetzner; the token only ever as a secret, never in user data."""

import base64
import contextlib
import gzip
import io
import json

import pytest
import yaml

from components.bootstrap import nginx
from components.bootstrap.userdata import SYNC_COMMAND
from components.settings import ConfigError
from tests.bootstrap.conftest import TOKEN, settings
from tests.stacks import run
from tools import plan

SECRET = "4dabf18193072939515e22adb298388d"  # Pulumi's signature key of a secret value
PARAMETER = "aws:ssm/parameter:Parameter"
COMMAND = "command:remote:Command"


def _secret(value):
    """The plain value of an input that must be secret; fails if it is not."""
    assert isinstance(value, dict) and SECRET in value, "expected a secret input"
    return value["value"]


def _plain(value):
    return value["value"] if isinstance(value, dict) and SECRET in value else value


def _generated(result) -> str:
    (password,) = result.of_type("random:index/randomPassword:RandomPassword")
    assert password.inputs["special"] is False and password.inputs["length"] == 48
    return password.state["result"]


def _user_data(result, name: str) -> str:
    """First boot as the host's cloud-init sees it: packed (gzip, base64) on both clouds."""
    if result.stack == "prod":
        packed = result.by_name(f"{name}-instance").inputs["userDataBase64"]
    else:
        packed = _plain(result.by_name(f"{name}-server").inputs["userData"])
    return gzip.decompress(base64.b64decode(packed)).decode()


def _bundle(result, name: str) -> dict:
    if result.stack == "prod":
        value = result.by_name(f"{name}-bundle").inputs["insecureValue"]
        return json.loads(gzip.decompress(base64.b64decode(value[3:])) if value.startswith("gz:") else value)
    return json.loads(_plain(result.by_name(f"{name}-sync").inputs["stdin"]))


def _files(bundle: dict) -> dict[str, dict]:
    return {f["path"]: f for f in bundle["files"]}


def test_aws_bearer_map_is_a_secure_string_under_the_stack_key():
    result = run()
    parameter = result.by_name("bearer-map")
    assert parameter.inputs["type"] == "SecureString"
    assert parameter.inputs["name"] == "/kumomta/prod/mta/secrets/bearer-map"
    assert parameter.inputs["keyId"] == result.by_name("secrets-key").state["arn"]
    assert _secret(parameter.inputs["value"]) == nginx.token_map_line(_generated(result))


@pytest.mark.parametrize("name", ["mta", "proxy"])
def test_aws_each_host_reads_its_bundle_from_its_own_parameter(name):
    result = run()
    parameter = result.by_name(f"{name}-bundle")
    assert parameter.inputs["name"] == f"/kumomta/prod/{name}/{name}/bundle"
    assert parameter.inputs["type"] == "String"
    # SSM PutParameter: Standard holds 4 KB, Advanced 8 KB; Intelligent-Tiering takes what the value needs.
    assert parameter.inputs["tier"] == "Intelligent-Tiering"
    bundle = _bundle(result, name)
    assert bundle["version"] == result.outputs["hosts"][name]["configVersion"]
    instance = result.by_name(f"{name}-instance")
    assert parameter.urn in instance.depends_on  # its first boot fetches it
    assert f"kumomta-sync eu-central-1 /kumomta/prod/{name}/{name}/bundle" in _user_data(result, name)


def test_aws_the_bundle_names_the_secret_and_never_holds_it():
    result = run()
    token = _generated(result)
    secret = _files(_bundle(result, "mta"))["/etc/nginx/kumomta-secrets/bearer.map"]
    assert secret["parameter"] == "/kumomta/prod/mta/secrets/bearer-map" and "content" not in secret
    assert secret["mode"] == "0600"
    for name in ("mta", "proxy"):
        assert token not in result.by_name(f"{name}-bundle").inputs["insecureValue"]
        assert token not in _user_data(result, name)


def test_aws_each_role_reads_its_own_parameters():
    result = run()
    for role in ("mta", "proxy"):
        policy = json.loads(result.by_name(f"{role}-read-config").inputs["policy"])
        assert policy["Statement"] == [
            {
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": f"arn:aws:ssm:eu-central-1:123456789012:parameter/kumomta/prod/{role}/*",
            }
        ]


@pytest.mark.parametrize("name", ["mta", "proxy"])
def test_hetzner_up_pushes_each_bundle_over_ssh_to_the_pinned_host_key(name):
    """pulumi-command remote.Command: `hostKey` is "the expected host key to verify the server's identity", and
    a change to `stdin` re-runs `update`; `triggers` re-run it for a new server."""
    result = run("prod-hcloud")
    push = result.by_name(f"{name}-sync")
    connection = _secret(push.inputs["connection"])  # it holds the deploy key
    assert connection["host"] == result.by_name(f"{name}-ipv4").state["ipAddress"]
    assert connection["user"] == "kumomta-sync"
    host_key = result.by_name(f"{name}-host-key")
    assert host_key.inputs["algorithm"] == "ED25519"
    assert connection["hostKey"] == host_key.state["publicKeyOpenssh"]
    deploy = result.by_name("deploy-key")
    assert connection["privateKey"] == deploy.state["privateKeyOpenssh"]
    assert push.inputs["create"] == push.inputs["update"] == SYNC_COMMAND
    server_id, manifest = push.inputs["triggers"]
    assert server_id == result.by_name(f"{name}-server").id
    assert manifest == {f["path"]: f["sha256"] for f in _bundle(result, name)["files"]}
    assert _bundle(result, name)["version"] == result.outputs["hosts"][name]["configVersion"]
    first_boot = yaml.safe_load(_user_data(result, name))
    assert first_boot["ssh_keys"]["ed25519_public"] == host_key.state["publicKeyOpenssh"].strip()
    (sync,) = [u for u in first_boot["users"] if isinstance(u, dict)]
    assert sync["ssh_authorized_keys"][0].endswith(deploy.state["publicKeyOpenssh"].strip())


def test_hetzner_the_token_travels_only_in_the_secret_push():
    result = run("prod-hcloud")
    token = _generated(result)
    pushed = _files(json.loads(_secret(result.by_name("mta-sync").inputs["stdin"])))
    assert pushed["/etc/nginx/kumomta-secrets/bearer.map"]["content"] == nginx.token_map_line(token)
    for name in ("mta", "proxy"):
        assert token not in _user_data(result, name)
        assert isinstance(result.by_name(f"{name}-server").inputs["userData"], dict)  # secret: it holds the host key


def test_hetzner_private_addresses_are_pinned():
    """A replaced server comes back on the same private address (Server.networks[].ip)."""
    result = run("prod-hcloud", proxyHosts=["proxy", "proxy2"], hcloud={"privateIps": {"proxy2": "10.43.2.77"}})
    ips = {name: result.by_name(f"{name}-server").inputs["networks"][0]["ip"] for name in ("mta", "proxy", "proxy2")}
    assert ips == {"mta": "10.43.1.10", "proxy": "10.43.2.10", "proxy2": "10.43.2.77"}


def test_mta_sends_through_the_proxy_by_its_addresses():
    aws, hcloud = run(), run("prod-hcloud")
    aws_policy = _files(_bundle(aws, "mta"))["/opt/kumomta/etc/policy/init.lua"]["content"]
    private = aws.by_name("proxy-eni").state["privateIp"]
    assert f"server = '{private}:5000'" in aws_policy
    assert f"source_address = '{private}'" in aws_policy  # the EIP is NAT, not on the interface
    server = hcloud.by_name("proxy-server").state
    hcloud_policy = _files(_bundle(hcloud, "mta"))["/opt/kumomta/etc/policy/init.lua"]["content"]
    assert f"server = '{server['networks'][0]['ip']}:5000'" in hcloud_policy
    assert f"source_address = '{server['ipv4Address']}'" in hcloud_policy
    assert "ehlo_domain = 'proxy.yourdomain.com'" in hcloud_policy


def test_socks5_is_open_between_the_role_subnets_only():
    aws, hcloud = run(), run("prod-hcloud")
    subnets = {
        "aws": {r: aws.by_name(f"{r}-subnet").inputs["cidrBlock"] for r in ("mta", "proxy")},
        "hcloud": {r: hcloud.by_name(f"{r}-subnet").inputs["ipRange"] for r in ("mta", "proxy")},
    }
    for cloud, result in (("aws", aws), ("hcloud", hcloud)):
        for name, rule in (("proxy", "ip saddr {mta} tcp dport 5000 accept comment \"in-tcp-5000-mta-hosts\""),
                           ("mta", "ip daddr {proxy} tcp dport 5000 accept comment \"out-tcp-5000-proxy-hosts\"")):  # fmt: skip
            ruleset = _files(_bundle(result, name))["/etc/nftables.conf"]["content"]
            assert [line.strip() for line in ruleset.splitlines() if "dport 5000" in line] == [
                rule.format(**subnets[cloud])
            ]
            first_boot = {f["path"]: f["content"] for f in yaml.safe_load(_user_data(result, name))["write_files"]}
            assert first_boot["/etc/nftables.conf"] == ruleset  # first boot starts from the same


def test_injected_token_replaces_the_generated_one():
    result = run(injectToken=TOKEN)
    assert not result.of_type("random:index/randomPassword:RandomPassword")
    assert _secret(result.by_name("bearer-map").inputs["value"]) == nginx.token_map_line(TOKEN)
    assert result.outputs["injectToken"] == TOKEN


def test_token_is_a_stack_output():
    result = run()
    assert result.outputs["injectToken"] == _generated(result)


def test_plan_never_prints_the_token(tmp_path):
    token = _generated(run())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert plan.main(["--stack", "prod", "--base", "none", "--json", str(tmp_path / "plan.json")]) == 0
    assert token not in out.getvalue()
    assert token not in (tmp_path / "plan.json").read_text()
    assert "bearer-map" in out.getvalue()  # the resources are there, their values are not


def test_a_bad_injected_token_is_refused_without_echoing_it():
    bad = "has spaces, so Nginx could not hold it as a key 0123456789"
    with pytest.raises(ConfigError) as refused:
        settings("aws", injectToken=bad)
    assert str(refused.value).startswith("kumomta:injectToken: must be 32 to 128")
    assert bad not in str(refused.value)
