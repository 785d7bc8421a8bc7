"""The live AWS side: security groups and their rules, instances' IMDS mode, Elastic IPs.

Groups are found by the tags the program puts on every taggable resource (`kumomta-stack`,
`kumomta-role`), not by ID, so a group recreated by hand or by a partial `up` is still audited.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from components.matrix import Role
from tools.verify import clouds
from tools.verify.checks import Result, Unavailable, failed, passed
from tools.verify.live import ApiFailure, Firewall, LiveRule, cidr, host_group
from tools.verify.stack import Host, Stack

GROUP = "drift"
KIND = "security group"


def connect(stack: Stack, timeout: float):
    return clouds.aws("ec2", stack, timeout)


def selector(stack: Stack, role: Role) -> str:
    return f"tags kumomta-stack={stack.name}, kumomta-role={role}"


def firewalls(ec2, stack: Stack) -> dict[Role, list[Firewall]]:
    with _api():
        groups = _all(
            ec2,
            "describe_security_groups",
            "SecurityGroups",
            Filters=[
                {"Name": "tag:kumomta-stack", "Values": [stack.name]},
                {"Name": "tag:kumomta-role", "Values": [role.value for role in Role]},
            ],
        )
        ids = [g["GroupId"] for g in groups]
        by_group = [{"Name": "group-id", "Values": ids}]
        rules = _all(ec2, "describe_security_group_rules", "SecurityGroupRules", Filters=by_group) if ids else []
    roles = {g["GroupId"]: Role(_tag(g, "kumomta-role")) for g in groups}
    found: dict[Role, list[Firewall]] = {}
    for group in groups:
        mine = frozenset(_rule(r, roles) for r in rules if r["GroupId"] == group["GroupId"])
        found.setdefault(roles[group["GroupId"]], []).append(
            Firewall(f"{group['GroupId']} ({group['GroupName']})", mine)
        )
    return found


def host_checks(stack: Stack) -> list[str]:
    return [name for host in stack.hosts for name in (_imds_check(host), _ip_check(host))]


def hosts(ec2, stack: Stack) -> list[Result]:
    """Per host: IMDSv2 required, and its Elastic IP still associated with its instance."""
    ids = [h.instance_id for h in stack.hosts]
    with _api():
        pages = _all(ec2, "describe_instances", "Reservations", Filters=[{"Name": "instance-id", "Values": ids}])
        addresses = ec2.describe_addresses(
            Filters=[{"Name": "public-ip", "Values": [h.public_ip for h in stack.hosts]}]
        )
    instances = {i["InstanceId"]: i for page in pages for i in page["Instances"] if i["State"]["Name"] != "terminated"}
    by_ip = {a["PublicIp"]: a for a in addresses["Addresses"]}
    rows = []
    for host in stack.hosts:
        instance = instances.get(host.instance_id)
        rows.append(_imds(host, instance))
        rows.append(_sending_ip(host, instance, by_ip.get(host.public_ip)))
    return rows


def _imds(host: Host, instance: dict | None) -> Result:
    check = _imds_check(host)
    if instance is None:
        return failed(GROUP, check, f"instance {host.instance_id} not found (terminated, or another region?)")
    tokens = instance.get("MetadataOptions", {}).get("HttpTokens")
    if tokens != "required":
        return failed(GROUP, check, f"{host.instance_id}: HttpTokens is {tokens}, so IMDSv1 answers without a token")
    return passed(GROUP, check, f"{host.instance_id}: HttpTokens required")


def _sending_ip(host: Host, instance: dict | None, address: dict | None) -> Result:
    check = _ip_check(host)
    if address is None:
        return failed(GROUP, check, f"{host.public_ip} is not an Elastic IP of this account and region (released?)")
    if "AssociationId" not in address:
        return failed(GROUP, check, f"{address['AllocationId']} ({host.public_ip}) is associated with nothing")
    enis = {eni["NetworkInterfaceId"] for eni in (instance or {}).get("NetworkInterfaces", [])}
    if address.get("InstanceId") != host.instance_id and address.get("NetworkInterfaceId") not in enis:
        where = address.get("InstanceId") or address.get("NetworkInterfaceId")
        return failed(GROUP, check, f"{host.public_ip} is associated with {where}, not {host.instance_id}")
    return passed(
        GROUP, check, f"{address['AllocationId']} on {address.get('NetworkInterfaceId')} of {host.instance_id}"
    )


def _imds_check(host: Host) -> str:
    return f"{host.label}: IMDSv2 required"


def _ip_check(host: Host) -> str:
    return f"{host.label}: sending IP {host.public_ip} attached"


def _rule(rule: dict, roles: dict[str, Role]) -> LiveRule:
    protocol = "all" if rule["IpProtocol"] == "-1" else rule["IpProtocol"]
    low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
    ports = "all" if protocol == "all" or low == -1 else str(low) if low == high else f"{low}-{high}"
    if "CidrIpv4" in rule or "CidrIpv6" in rule:
        peer = cidr(rule.get("CidrIpv4") or rule["CidrIpv6"])
    elif "ReferencedGroupInfo" in rule:
        group = rule["ReferencedGroupInfo"]["GroupId"]
        peer = host_group(roles[group]) if group in roles else f"security group {group}"
    else:
        peer = f"prefix list {rule.get('PrefixListId')}"
    return LiveRule("out" if rule["IsEgress"] else "in", protocol, ports, peer)


def _all(ec2, operation: str, key: str, **kwargs) -> list[dict]:
    return [item for page in ec2.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def _tag(resource: dict, key: str) -> str:
    return next(t["Value"] for t in resource.get("Tags", []) if t["Key"] == key)


@contextmanager
def _api() -> Iterator[None]:
    try:
        yield
    except NoCredentialsError:
        raise Unavailable(
            "boto3 found no AWS credentials; configure them the usual boto3 way (AWS_PROFILE, environment, SSO)"
        ) from None
    except (ClientError, BotoCoreError) as err:
        raise ApiFailure(f"AWS: {err}") from None
