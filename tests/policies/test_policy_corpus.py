"""The regression corpus (corpus.yaml) through the pack as the engine runs it: every crafted exposure
is caught by exactly the mandatory policies it names, every non-exposure draws no mandatory
violation. One pack process per stack config of the corpus, started once for this module."""

import contextlib
import functools
import json
from pathlib import Path

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from tests.policies import material
from tests.policies.kit import MANDATORY
from tools.policy_run import Pack, Resource

CORPUS = material.load(Path(__file__).parent / "corpus.yaml")
CASES = CORPUS["cases"]
EXPOSURES = [c for c in CASES if c["expect"]]
NON_EXPOSURES = [c for c in CASES if not c["expect"]]


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:corpus::kumomta-infra::{type_}::{name}"


def _wire(value):
    """The corpus's tags made into values (keys, secrets: see material.py), and "<unknown>", a value
    preview does not know, made into the engine's sentinel."""
    return _unknowns(material.realise(value))


def _unknowns(value):
    if isinstance(value, dict):
        return {k: _unknowns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknowns(v) for v in value]
    return UNKNOWN_STRING_VALUE if value == "<unknown>" else value


def resources(case: dict) -> list[Resource]:
    entries = CORPUS["bases"][case["base"]] + case["resources"] if "base" in case else case["resources"]
    types = {entry["name"]: entry["type"] for entry in entries}
    return [
        Resource(
            urn=urn(entry["type"], entry["name"]),
            type=entry["type"],
            name=entry["name"],
            inputs=_wire(entry["props"]),
            outputs=_wire(entry.get("outputs", entry["props"])),
            protect=entry.get("protect", False),
            property_dependencies={k: [urn(types[d], d) for d in v] for k, v in entry.get("deps", {}).items()},
        )
        for entry in entries
    ]


@pytest.fixture(scope="module")
def packs():
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(
                Pack(stack="corpus", stack_config=config, policy_config=CORPUS["policy_config"], dry_run=True)
            )
            for name, config in CORPUS["stack_configs"].items()
        }


def verdicts(pack: Pack, case: dict):
    """Analyze each resource (a base's verdicts are the same in every case, so asked once), then the stack."""
    found = []
    analyze = functools.partial(_analyze, pack)
    for resource in resources(case):
        found += analyze(resource.urn, json.dumps(resource.inputs, sort_keys=True), resource)
    return found + pack.analyze_stack(resources(case))


_seen: dict = {}


def _analyze(pack: Pack, urn_: str, props: str, resource: Resource):
    key = (id(pack), urn_, props, resource.protect)
    if key not in _seen:
        _seen[key] = pack.analyze(resource)
    return _seen[key]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_case_draws_exactly_its_expected_mandatory_policies(packs, case):
    found = verdicts(packs[case.get("config", "main")], case)
    mandatory = [v for v in found if v.level == "mandatory"]
    assert sorted({v.policy for v in mandatory}) == sorted(case["expect"]), [str(v) for v in mandatory]
    for fragment in case.get("names", []):
        assert any(fragment in v.message for v in mandatory), (fragment, [str(v) for v in mandatory])


def test_the_corpus_is_wide():
    """At least 100 exposures and 40 non-exposures, over every resource type the pack reads, every
    guarded port, and every mandatory policy."""
    assert (len(EXPOSURES), len(NON_EXPOSURES)) >= (100, 40) and len(NON_EXPOSURES) >= 40
    assert len({c["id"] for c in CASES}) == len(CASES)
    types = {r["type"] for c in CASES for r in c["resources"]}
    assert {
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "hcloud:index/firewall:Firewall",
        "aws-native:ec2:SecurityGroup",
        "aws-native:ec2:SecurityGroupIngress",
        "aws:ec2/managedPrefixList:ManagedPrefixList",
        "aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/listenerRule:ListenerRule",
        "aws:alb/loadBalancer:LoadBalancer",
        "hcloud:index/loadBalancerService:LoadBalancerService",
        "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork",
        "pulumi:pulumi:Stack",
    } <= types
    assert {p for c in EXPOSURES for p in c["expect"]} == set(MANDATORY)


def test_the_corpus_hides_every_kind_of_private_key_and_shows_every_kind_of_public_one():
    """Each private kind is caught somewhere; each public kind, a certificate and a DKIM record are in cases that
    are not."""

    def kinds(cases):
        return {node.value for c in cases for node in _tags(c["resources"]) if node.tag == "!key"}

    caught = [
        c for c in EXPOSURES if {"no-plain-private-keys", "no-plain-private-keys-in-stack-outputs"} & set(c["expect"])
    ]
    assert kinds(caught) >= set(material.PRIVATE)
    assert kinds(NON_EXPOSURES) >= set(material.KINDS) - set(material.PRIVATE)


def _tags(value):
    if isinstance(value, material.Tagged):
        yield value
        value = value.value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from _tags(item)
