"""A host renamed with `hostAliases` keeps its sending IP, its spool and its channel (issue 12).

Compared as `pulumi preview --diff` would compare them (tools/diff.py, which follows the engine's
inheritedChildAlias: a child named "<host>-x" is aliased under the host's old name).
"""

import pytest

from components.settings import ConfigError
from tests.test_plan_diff import changed, records
from tools import diff as diffs
from tools.mockrun import settings_of, stack_config

PROTECTED = {
    "aws:ec2/eip:Eip",
    "hcloud:index/primaryIp:PrimaryIp",
    "aws:ebs/volume:Volume",
    "hcloud:index/volume:Volume",
}


@pytest.mark.parametrize("stack", ["prod", "prod-hcloud"])
@pytest.mark.parametrize(("key", "old", "new"), [("proxyHosts", "proxy", "proxy-a"), ("mtaHosts", "mta", "mta-a")])
def test_a_renamed_host_keeps_its_sending_ip_and_spool(stack, key, old, new):
    base = records(stack)
    diff = diffs.compare(base, records(stack, **{key: [new], "hostAliases": {new: old}}), "main")
    assert diff.errors == []  # nothing protected is released or replaced
    steps = changed(diff)
    kept = [step for step in steps.values() if step.record["type"] in PROTECTED]
    assert kept and all(step.op == "update" and step.was for step in kept)
    assert not [s for s in steps.values() if s.op in ("replace", "delete") and s.record["type"] in PROTECTED]
    machine = "aws:ec2/instance:Instance" if stack == "prod" else "hcloud:index/server:Server"
    (host,) = [s for s in steps.values() if s.record["type"] == machine]
    assert host.op == "update"  # renamed in place, not rebuilt


def test_an_aws_host_renamed_keeps_polling_the_parameter_it_booted_with():
    head = records("prod", proxyHosts=["proxy-a"], hostAliases={"proxy-a": "proxy"})
    (bundle,) = [r for r in head if r["name"] == "proxy-a-bundle"]
    assert bundle["inputs"]["name"] == "/kumomta/prod/proxy/proxy/bundle"


@pytest.mark.parametrize(
    ("aliases", "line"),
    [
        ({"nope": "proxy"}, "kumomta:hostAliases: 'nope' is not a host of this stack"),
        ({"proxy": "mta"}, "kumomta:hostAliases: 'mta' is still a host of this stack"),
        ({"proxy": "Old Name"}, "kumomta:hostAliases.proxy: 'Old Name' is not a DNS label"),
        # The key as written, not camelCased like a setting's name.
        ({"proxy_hosts": 5}, "kumomta:hostAliases.proxy_hosts: must be a string, not 5"),
    ],
)
def test_aliases_name_this_stacks_hosts_and_their_former_labels(aliases, line):
    with pytest.raises(ConfigError) as caught:
        settings_of({**stack_config("prod"), "kumomta:hostAliases": aliases})
    assert str(caught.value).startswith(line)
