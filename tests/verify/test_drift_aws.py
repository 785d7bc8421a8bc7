"""Drift on AWS: live security groups, IMDS and Elastic IPs read through boto3 from a moto server."""

import uuid

import boto3
import pytest

from tests.verify import stacks
from tests.verify.aws_replay import group_id, replay
from tools.verify import drift
from tools.verify.checks import Status, run_all


def audit(name, outputs, **overrides):
    results = run_all(drift.tasks(stacks.stack(outputs, name=name, **overrides), timeout=5))
    return {r.check: r for r in results}


@pytest.fixture
def ec2(aws):
    return boto3.client("ec2", region_name="eu-central-1")


@pytest.fixture
def name():
    """A stack name of this test's own, for its resources on the shared moto server."""
    return f"t-{uuid.uuid4().hex[:8]}"


def test_the_stack_as_the_program_builds_it_has_no_drift(ec2, name):
    outputs = replay(ec2, stacks.program(), name)
    rows = audit(name, outputs)
    assert sorted(rows) == [
        "mta firewall matches the matrix",
        "mta: IMDSv2 required",
        f"mta: sending IP {outputs['hosts']['mta']['publicIp']} attached",
        "proxy firewall matches the matrix",
        "proxy: IMDSv2 required",
        f"proxy: sending IP {outputs['hosts']['proxy']['publicIp']} attached",
    ]
    assert {r.status for r in rows.values()} == {Status.PASS}, [r for r in rows.values() if r.status != Status.PASS]


def test_a_fleet_of_3_and_4_has_no_drift_either(ec2, name):
    fleet = {
        "mtaHosts": ["mta1", "mta2", "mta3"],
        "proxyHosts": ["p1", "p2", "p3", "p4"],
        "adminCidrs": ["192.0.2.0/29"],
    }
    outputs = replay(ec2, stacks.program(**fleet), name)
    rows = audit(name, outputs, **fleet)
    assert len(rows) == 2 + 2 * 7
    assert {r.status for r in rows.values()} == {Status.PASS}


def test_console_changes_are_each_reported_in_the_guides_words(ec2, name):
    outputs = replay(ec2, stacks.program(), name)
    mta_sg, proxy_sg = group_id(ec2, name, "mta"), group_id(ec2, name, "proxy")
    ec2.authorize_security_group_ingress(
        GroupId=mta_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.revoke_security_group_ingress(
        GroupId=proxy_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "UserIdGroupPairs": [{"GroupId": mta_sg}]}
        ],
    )
    proxy_ip = outputs["hosts"]["proxy"]["publicIp"]
    (address,) = ec2.describe_addresses(PublicIps=[proxy_ip])["Addresses"]
    ec2.disassociate_address(AssociationId=address["AssociationId"])

    rows = audit(name, outputs)
    mta, proxy = rows["mta firewall matches the matrix"], rows["proxy firewall matches the matrix"]
    assert (mta.status, mta.details) == (Status.FAIL, ("extra: 8000/tcp in from 0.0.0.0/0 on mta",))
    assert (proxy.status, proxy.details) == (Status.FAIL, ("missing: 5000/tcp in from KumoMTA hosts only on proxy",))
    detached = rows[f"proxy: sending IP {proxy_ip} attached"]
    assert (
        detached.status == Status.FAIL
        and detached.reason == f"{address['AllocationId']} ({proxy_ip}) is associated with nothing"
    )
    failed = {name for name, r in rows.items() if r.status == Status.FAIL}
    assert failed == {mta.check, proxy.check, detached.check}, "nothing else may be reported"


def test_a_group_pointing_at_a_foreign_group_or_ipv6_world_is_named_as_such(ec2, name):
    outputs = replay(ec2, stacks.program(), name)
    stranger = ec2.create_security_group(GroupName="stranger", Description="not ours")["GroupId"]
    ec2.authorize_security_group_egress(
        GroupId=group_id(ec2, name, "proxy"),
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": stranger}]},
            {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        ],
    )
    details = audit(name, outputs)["proxy firewall matches the matrix"].details
    assert details == (
        "extra: all/all out to ::/0 on proxy",
        f"extra: 22/tcp out to security group {stranger} on proxy",
    )


def test_imdsv1_and_a_lost_security_group_are_failures(ec2, name):
    outputs = replay(ec2, stacks.program(), name)
    ec2.modify_instance_metadata_options(InstanceId=outputs["hosts"]["mta"]["instanceId"], HttpTokens="optional")
    ec2.delete_tags(Resources=[group_id(ec2, name, "proxy")], Tags=[{"Key": "kumomta-stack"}])
    rows = audit(name, outputs)
    assert rows["mta: IMDSv2 required"].status == Status.FAIL
    assert "HttpTokens is optional" in rows["mta: IMDSv2 required"].reason
    lost = rows["proxy firewall matches the matrix"]
    assert lost.status == Status.FAIL
    assert (
        lost.reason == f"no security group with tags kumomta-stack={name}, kumomta-role=proxy (deleted, or relabelled?)"
    )


def test_without_credentials_every_drift_check_is_skipped_with_the_way_to_enable_it(ec2, name, monkeypatch, tmp_path):
    outputs = replay(ec2, stacks.program(), name)
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    rows = audit(name, outputs)
    assert len(rows) == 6
    for row in rows.values():
        assert row.status == Status.SKIPPED
        assert "no AWS credentials" in row.reason and "AWS_PROFILE" in row.reason
