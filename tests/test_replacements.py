"""The replacement table (tools/replacements.py) covers every resource type and every input the program
registers, on both clouds, and names only inputs the installed provider SDKs really have."""

import importlib
import inspect
import re

import pulumi_aws
import pytest

from tests.stacks import run
from tools.hostreach import REACH
from tools.replacements import TYPES

# Both clouds, with the settings that add resource types or inputs: IPv6, an existing VPC, SSH, a
# created Hetzner zone, Route 53 in front of Hetzner hosts, SSH keys, more hosts.
VARIANTS = [
    ("prod", {}),
    ("prod", {"ipv6": True, "adminCidrs": ["198.51.100.7/32"], "trustedCidrs": ["198.51.100.0/28"]}),
    ("prod", {"aws": {"vpcId": "vpc-0abc", "subnetId": "subnet-0abc", "amiId": "ami-0123456789abcdef0"}}),
    ("prod", {"packageEgress": False, "ntpCidrs": ["198.51.100.9/32"], "proxyHosts": ["p1", "p2"]}),
    ("prod-hcloud", {}),
    ("prod-hcloud", {"ipv6": True, "dns": {"provider": "hcloud", "zone": "yourdomain.com", "create": True}}),
    ("prod-hcloud", {"dns": {"provider": "route53", "zoneId": "Z0123456789ABCDEFGHIJ"}}),
    ("prod-hcloud", {"hcloud": {"sshKeys": ["me"]}, "adminCidrs": ["198.51.100.7/32"]}),
]


def registered() -> dict[str, set[str]]:
    """Per custom resource type, every input path any variant registers (lists of objects as `key`)."""
    found: dict[str, set[str]] = {}
    for stack, overrides in VARIANTS:
        for reg in run(stack, **overrides).registrations:
            if reg.custom:
                paths = found.setdefault(reg.type, set())
                for key, value in reg.inputs.items():
                    paths.update(_paths(key, value))
    return found


def _paths(path: str, value) -> list[str]:
    if isinstance(value, dict) and "4dabf18193072939515e22adb298388d" not in value:
        return [p for k, v in value.items() for p in _paths(f"{path}.{k}", v)] or [path]
    return [path]


REGISTERED = registered()


def test_every_registered_resource_type_has_an_entry():
    assert sorted(set(REGISTERED) - set(TYPES)) == []
    # and both clouds are in it, so the variants above did their job
    assert {t.split(":")[0] for t in REGISTERED} == {"aws", "hcloud", "random", "tls", "command"}
    assert "hcloud:index/zone:Zone" in REGISTERED and "aws:route53/record:Record" in REGISTERED


def test_every_registered_input_is_classified():
    unclassified = {
        (type_, path)
        for type_, paths in REGISTERED.items()
        for path in paths
        if TYPES[type_].classify(path) == "unknown"
    }
    assert unclassified == set()


def _sdk_inputs(type_: str) -> set[str]:
    """The input names of the installed SDK's resource, camelCased as on the wire."""
    package, module, name = type_.split(":")
    module = module.split("/")[0]
    python = importlib.import_module(f"pulumi_{package}" + ("" if module == "index" else f".{module}"))
    resource = getattr(python, name)
    params = inspect.signature(resource._internal_init).parameters
    return {
        re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), p)
        for p in params
        if p not in ("self", "resource_name", "opts")
    }


@pytest.mark.parametrize("type_", sorted(TYPES))
def test_the_table_names_only_real_inputs(type_):
    rules = TYPES[type_]
    named = {path.split(".")[0] for path in rules.replace | rules.in_place | set(rules.effects) | rules.cannot_shrink}
    assert named - _sdk_inputs(type_) == set()
    assert not rules.replace & rules.in_place
    assert rules.source.startswith("https://github.com/")


def test_the_host_reach_rows_name_real_inputs():
    for row in REACH:
        assert row.property in _sdk_inputs(row.type), row


def test_the_stop_start_of_an_instance_type_change_is_what_the_provider_documents():
    # pulumi-aws's docs, from the Terraform provider's: the installed package says it, so the note stands.
    doc = inspect.getdoc(pulumi_aws.ec2.InstanceArgs.instance_type.fget)
    assert "Updates to this field will trigger a stop/start of the EC2 instance." in doc
    assert "stop/start" in TYPES["aws:ec2/instance:Instance"].effect("instanceType")


def test_user_data_is_in_place_unless_replace_on_change_and_the_program_ignores_it():
    # website/docs/r/instance.html.markdown: "Updates to this field will trigger a stop/start of the EC2 instance
    # by default. If the user_data_replace_on_change is set then updates to this field will trigger a destroy and
    # recreate". The program never sets userDataReplaceOnChange, and lists userDataBase64 in ignoreChanges.
    assert TYPES["aws:ec2/instance:Instance"].classify("userDataBase64") == "update"
    (instance, *_) = run("prod").of_type("aws:ec2/instance:Instance")
    assert "userDataReplaceOnChange" not in instance.inputs and "userDataBase64" in instance.ignore_changes


def test_nested_paths_fall_back_to_their_block():
    instance = TYPES["aws:ec2/instance:Instance"]
    assert instance.classify("rootBlockDevice.encrypted") == "replace"
    assert instance.classify("rootBlockDevice.volumeSize") == "update"
    assert instance.classify("tags.Name") == "update"
    assert instance.classify("noSuchInput") == "unknown"
