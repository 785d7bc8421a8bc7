"""End to end: the pack started as the engine starts it, spoken to over gRPC as the engine speaks."""

import grpc
import pytest
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2

from tests.policies.kit import EIP, INGRESS_RULE, MANDATORY, POLICIES, SG, UNKNOWN, aws_stack, node, urn
from tools.policy_run import Pack, Resource


def resources(nodes) -> list[Resource]:
    """kit nodes as the engine describes resources: inputs, outputs, options, property dependencies."""
    return [
        Resource(
            urn=urn(n.type, n.name),
            type=n.type,
            name=n.name,
            inputs=n.props,
            outputs=n.props,
            protect=n.protect,
            property_dependencies={key: [urn(_type_of(nodes, d), d) for d in deps] for key, deps in n.deps.items()},
        )
        for n in nodes
    ]


def _type_of(nodes, name: str) -> str:
    return next(n.type for n in nodes if n.name == name)


def public_socks_group() -> Resource:
    entry = {"protocol": "6", "fromPort": 5000.0, "toPort": 5000.0, "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]}
    return Resource(urn(SG, "proxy-sg"), SG, "proxy-sg", {"ingress": [entry], "tags": {"kumomta-role": "proxy"}})


@pytest.fixture(scope="module")
def pack():
    with Pack(stack="test", stack_config={"kumomta:proxyMetricsPort": "9555"}) as running:
        yield running


def test_the_pack_describes_every_policy_with_its_level(pack):
    levels = {p.name: p.enforcementLevel for p in pack.info.policies}
    assert pack.info.name == "kumoguard"
    assert levels == {name: _level(policy) for name, policy in POLICIES.items()}
    metrics = next(p for p in pack.info.policies if p.name == "no-public-metrics")
    assert json_format.MessageToDict(metrics.configSchema.properties)["metricsPorts"]["default"] == ["9090-9101", 9464]


def _level(policy) -> int:
    return analyzer_pb2.MANDATORY if policy.name in MANDATORY else analyzer_pb2.ADVISORY


def test_analyze_reports_a_public_socks_port_as_mandatory(pack):
    (found,) = [v for v in pack.analyze(public_socks_group()) if v.level == "mandatory"]
    assert found.policy == "no-public-socks-proxy"
    assert found.urn == urn(SG, "proxy-sg")
    assert "proxy-sg ingress[0] (tcp 5000 from cidrBlocks[1] = 0.0.0.0/0)" in found.message


def test_analyze_with_preview_unknowns_still_judges_the_known_part(pack):
    rule = {"ipProtocol": "tcp", "fromPort": UNKNOWN, "toPort": UNKNOWN, "cidrIpv4": "0.0.0.0/0"}
    found = {(v.policy, v.level) for v in pack.analyze(Resource(urn(INGRESS_RULE, "r"), INGRESS_RULE, "r", rule))}
    assert ("no-public-kumomta-http", "mandatory") in found
    assert ("preview-unknowns", "advisory") in found


def test_the_stacks_metrics_port_reaches_the_pack(pack):
    rule = {"ipProtocol": "tcp", "fromPort": 9555, "toPort": 9555, "cidrIpv4": "0.0.0.0/0", "description": "x"}
    found = pack.analyze(Resource(urn(INGRESS_RULE, "r"), INGRESS_RULE, "r", rule))
    assert [v.policy for v in found] == ["no-public-metrics"]


def test_analyze_stack_resolves_preview_references_through_property_dependencies(pack):
    assert pack.analyze_stack(resources(aws_stack(preview=True))) == []


def test_analyze_stack_reports_breaches_against_their_resource(pack):
    spare = node(EIP, "spare-eip")
    found = pack.analyze_stack(resources(aws_stack(spare, preview=True)))
    assert [(v.policy, v.level, v.urn) for v in found] == [
        ("sending-ips-protected", "mandatory", urn(EIP, "spare-eip"))
    ]


def test_handshake_is_left_to_the_legacy_path(pack):
    """The engine calls Handshake first and accepts UNIMPLEMENTED, which is what this SDK answers."""
    with pytest.raises(grpc.RpcError) as raised:
        pack.analyzer.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(engine_address=""))
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_policy_config_and_levels_are_applied_as_the_engine_applies_them():
    config = {"no-public-metrics": {"metricsPorts": [9200]}, "no-public-ssh": {"enforcementLevel": "advisory"}}
    rules = [
        {"protocol": "tcp", "fromPort": p, "toPort": p, "cidrBlocks": ["0.0.0.0/0"], "description": "x"}
        for p in (22, 9101, 9200)
    ]
    with Pack(policy_config=config) as running:
        found = running.analyze(Resource(urn(SG, "sg"), SG, "sg", {"ingress": rules, "tags": {"kumomta-role": "mta"}}))
    assert sorted((v.policy, v.level) for v in found) == [
        ("no-public-metrics", "mandatory"),
        ("no-public-ssh", "advisory"),
    ]
    messages = {v.policy: v.message for v in found}
    assert "sg ingress[2] (tcp 9200" in messages["no-public-metrics"]
    assert "sg ingress[0] (tcp 22" in messages["no-public-ssh"]


def test_the_stack_policys_config_reaches_the_engine_with_its_defaults(pack):
    guarded = next(p for p in pack.info.policies if p.name == "no-public-guarded-ports")
    schema = json_format.MessageToDict(guarded.configSchema.properties)
    assert (schema["metricsPorts"]["default"], schema["allowedPrefixLists"]["default"]) == (["9090-9101", 9464], [])
    assert schema["allowedPrefixLists"]["items"]["pattern"] == "^pl-[0-9a-f]+$"


def test_an_allowed_prefix_list_is_configured_as_the_engine_configures_it():
    rule = {"securityGroupId": "sg-x", "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "prefixListId": "pl-0aws"}
    stack_ = [Resource(urn(INGRESS_RULE, "r"), INGRESS_RULE, "r", rule, rule)]
    with Pack() as closed:
        assert [v.policy for v in closed.analyze_stack(stack_)] == ["no-public-guarded-ports"]
    with Pack(policy_config={"no-public-guarded-ports": {"allowedPrefixLists": ["pl-0aws"]}}) as allowed:
        assert allowed.analyze_stack(stack_) == []
