"""kumomta-sync, the AWS host's half of the day-2 channel, against moto's SSM and the real kumomta-apply."""

import os
import subprocess
import sys
import uuid

import boto3
import pytest

from components.aws import parameter_value
from components.bootstrap import ProxyTarget, bearer_map, mta_bundle
from components.bootstrap.render import TEMPLATES
from tests.bootstrap.conftest import PROXIES, SUBNETS, TOKEN, settings
from tests.bootstrap.test_apply import APPLY, Host

SYNC = TEMPLATES / "sbin" / "kumomta-sync"
REGION = "eu-central-1"


@pytest.fixture
def ssm(moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("ssm", region_name=REGION, endpoint_url=moto_endpoint)


class Stack:
    """What `pulumi up` writes for one MTA: its bundle parameter and the bearer map's SecureString."""

    def __init__(self, ssm):
        self.ssm, self.prefix = ssm, f"/kumomta/t{uuid.uuid4().hex[:8]}/mta"
        self.bundle_parameter = f"{self.prefix}/mta/bundle"

    def publish(self, token: str = TOKEN, proxies=None):
        secret = bearer_map(token, f"{self.prefix}/secrets/bearer-map")
        self.ssm.put_parameter(Name=secret.parameter, Value=secret.content, Type="SecureString", Overwrite=True)
        bundle = mta_bundle(settings("aws"), "mta", SUBNETS["aws"]["proxy"], proxies or PROXIES["aws"], secret)
        value = parameter_value(bundle.json(inline_secrets=False))
        self.ssm.put_parameter(Name=self.bundle_parameter, Value=value, Type="String", Overwrite=True)
        return bundle


def _sync(
    host: Host, moto_endpoint: str, parameter: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    wrapper = host.bin / "kumomta-apply"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{APPLY}" "$@"\n')
    wrapper.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{host.bin}:{os.environ['PATH']}",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "KUMOMTA_APPLY": str(wrapper),
        "KUMOMTA_APPLY_ROOT": str(host.root),
        "KUMOMTA_STATE": str(host.state),
        "FAKE_CALLS": str(host.log),
        "FAKE_FAIL": "",
        "FAKE_INACTIVE": "",
        "KUMOMTA_SETTLE": "0.1",  # the fake systemctl's units never change; test_apply.py covers the wait itself
        **(env or {}),
    }
    host.log.write_text("")
    return subprocess.run(
        [sys.executable, str(SYNC), REGION, parameter, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_new_bundle_is_fetched_with_its_secrets_and_applied(tmp_path, ssm, moto_endpoint):
    host, stack = Host(tmp_path), Stack(ssm)
    bundle = stack.publish()
    stored = ssm.get_parameter(Name=stack.bundle_parameter)["Parameter"]["Value"]
    assert TOKEN not in stored  # the bundle parameter names the secret; only the SecureString holds it
    done = _sync(host, moto_endpoint, stack.bundle_parameter)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"applied {bundle.version}")
    assert TOKEN in host.file("/etc/nginx/kumomta-secrets/bearer.map").read_text()
    again = _sync(host, moto_endpoint, stack.bundle_parameter)
    assert (again.returncode, again.stdout) == (0, "")  # up to date: nothing fetched, nothing said


def test_a_proxy_added_by_up_reaches_the_running_mta(tmp_path, ssm, moto_endpoint):
    host, stack = Host(tmp_path), Stack(ssm)
    stack.publish()
    assert _sync(host, moto_endpoint, stack.bundle_parameter).returncode == 0
    more = [*PROXIES["aws"], ProxyTarget("proxy2.example.com", "10.42.2.11", "10.42.2.11")]
    bundle = stack.publish(proxies=more)
    done = _sync(host, moto_endpoint, stack.bundle_parameter)
    assert done.returncode == 0, done.stderr
    assert "proxy2.example.com" in host.file("/opt/kumomta/etc/policy/init.lua").read_text()
    assert host.applied() == bundle.version


def test_a_large_bundle_travels_gzipped(tmp_path, ssm, moto_endpoint):
    """SSM PutParameter: a standard parameter's value holds 4 KB; the bundle of an MTA with many proxies is more."""
    host, stack = Host(tmp_path), Stack(ssm)
    many = [ProxyTarget(f"p{i}.example.com", f"10.42.2.{i + 10}", f"10.42.2.{i + 10}") for i in range(40)]
    bundle = stack.publish(proxies=many)
    assert ssm.get_parameter(Name=stack.bundle_parameter)["Parameter"]["Value"].startswith("gz:")
    assert _sync(host, moto_endpoint, stack.bundle_parameter).returncode == 0
    assert host.applied() == bundle.version


def test_a_secret_changed_after_its_bundle_waits_for_the_next_round(tmp_path, ssm, moto_endpoint):
    host, stack = Host(tmp_path), Stack(ssm)
    stack.publish()
    ssm.put_parameter(Name=f"{stack.prefix}/secrets/bearer-map", Value="x", Type="SecureString", Overwrite=True)
    done = _sync(host, moto_endpoint, stack.bundle_parameter)
    assert done.returncode == 5
    assert "changed after the bundle was made" in done.stderr
    assert host.applied() is None and not host.file("/etc/nftables.conf").exists()


def test_an_unreadable_bundle_leaves_the_host_as_it_is(tmp_path, ssm, moto_endpoint):
    done = _sync(Host(tmp_path), moto_endpoint, "/kumomta/nothing/here", "--wait", "0")
    assert done.returncode == 5
    assert "could not read /kumomta/nothing/here" in done.stderr and "the host keeps what it runs" in done.stderr


def test_a_bundle_the_host_refused_is_not_fetched_again_every_round(tmp_path, ssm, moto_endpoint):
    host, stack = Host(tmp_path), Stack(ssm)
    stack.publish()
    assert _sync(host, moto_endpoint, stack.bundle_parameter).returncode == 0
    bundle = stack.publish(token="R" * 48)
    env_fail = {"FAKE_FAIL": "nginx"}
    done = _sync(host, moto_endpoint, stack.bundle_parameter, env=env_fail)
    assert done.returncode == 2 and "refused by nginx" in done.stderr
    again = _sync(host, moto_endpoint, stack.bundle_parameter, env=env_fail)
    assert again.returncode == 11
    assert again.stdout.startswith(f"held: {bundle.version} failed 1 time(s)")
    assert host.calls() == []  # the next round neither validated nor reloaded anything
