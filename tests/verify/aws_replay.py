"""Create in an EC2 API (moto) exactly what the program registered under mocks, as `pulumi up` would.

The resources come from `run_stack`, not from the matrix, so a drift test compares what the
program really declares with what the verify tool expects, two independent readings.
"""

from typing import Any

from tools.mockrun import Registration, Run

SG = "aws:ec2/securityGroup:SecurityGroup"
RULES = {
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "authorize_security_group_ingress",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "authorize_security_group_egress",
}


def replay(ec2, run: Run, stack: str) -> dict[str, Any]:
    """Build the stack's network, groups, rules, interfaces, EIPs and instances; return its outputs.

    Everything is tagged as belonging to `stack`, so tests sharing one moto server don't meet.
    """
    real: dict[str, str] = {}  # placeholder ID or address -> the one moto made
    (vpc,) = run.of_type("aws:ec2/vpc:Vpc")
    real[vpc.id] = ec2.create_vpc(CidrBlock=vpc.inputs["cidrBlock"], TagSpecifications=_tags("vpc", vpc, stack))["Vpc"][
        "VpcId"
    ]
    for subnet in run.of_type("aws:ec2/subnet:Subnet"):
        made = ec2.create_subnet(VpcId=real[subnet.inputs["vpcId"]], CidrBlock=subnet.inputs["cidrBlock"])
        real[subnet.id] = made["Subnet"]["SubnetId"]
    for group in run.of_type(SG):
        real[group.id] = ec2.create_security_group(
            GroupName=group.state["name"],
            Description=group.inputs["description"],
            VpcId=real[group.inputs["vpcId"]],
            TagSpecifications=_tags("security-group", group, stack),
        )["GroupId"]
        # The provider drops AWS's implicit allow-all egress from every group it creates.
        ec2.revoke_security_group_egress(
            GroupId=real[group.id], IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        )
    for rule in (r for r in run.registrations if r.type in RULES):
        getattr(ec2, RULES[rule.type])(
            GroupId=real[rule.inputs["securityGroupId"]], IpPermissions=[_permission(rule, real)]
        )
    for eni in run.of_type("aws:ec2/networkInterface:NetworkInterface"):
        made = ec2.create_network_interface(
            SubnetId=real[eni.inputs["subnetId"]], Groups=[real[g] for g in eni.inputs["securityGroups"]]
        )["NetworkInterface"]
        real[eni.id], real[eni.state["privateIp"]] = made["NetworkInterfaceId"], made["PrivateIpAddress"]
    for eip in run.of_type("aws:ec2/eip:Eip"):
        made = ec2.allocate_address(Domain="vpc", TagSpecifications=_tags("elastic-ip", eip, stack))
        real[eip.state["allocationId"]], real[eip.state["publicIp"]] = made["AllocationId"], made["PublicIp"]
    for association in run.of_type("aws:ec2/eipAssociation:EipAssociation"):
        ec2.associate_address(
            AllocationId=real[association.inputs["allocationId"]],
            NetworkInterfaceId=real[association.inputs["networkInterfaceId"]],
        )
    for instance in run.of_type("aws:ec2/instance:Instance"):
        options = instance.inputs["metadataOptions"]
        real[instance.id] = ec2.run_instances(
            ImageId=instance.inputs["ami"],  # moto runs any image ID, the placeholder included
            MinCount=1,
            MaxCount=1,
            InstanceType=instance.inputs["instanceType"],
            NetworkInterfaces=[
                {
                    "NetworkInterfaceId": real[instance.inputs["primaryNetworkInterface"]["networkInterfaceId"]],
                    "DeviceIndex": 0,
                }
            ],
            MetadataOptions={"HttpTokens": options["httpTokens"], "HttpEndpoint": options["httpEndpoint"]},
            TagSpecifications=_tags("instance", instance, stack),
        )["Instances"][0]["InstanceId"]
    return {
        "hosts": {label: {k: real.get(v, v) for k, v in host.items()} for label, host in run.outputs["hosts"].items()}
    }


def group_id(ec2, stack: str, role: str) -> str:
    tagged = [{"Name": "tag:kumomta-stack", "Values": [stack]}, {"Name": "tag:kumomta-role", "Values": [role]}]
    (group,) = ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
    return group["GroupId"]


def _permission(rule: Registration, real: dict[str, str]) -> dict:
    i = rule.inputs
    permission = {"IpProtocol": i["ipProtocol"], "FromPort": int(i["fromPort"]), "ToPort": int(i["toPort"])}
    if "referencedSecurityGroupId" in i:
        permission["UserIdGroupPairs"] = [{"GroupId": real[i["referencedSecurityGroupId"]]}]
    elif "cidrIpv4" in i:
        permission["IpRanges"] = [{"CidrIp": i["cidrIpv4"], "Description": i["description"]}]
    else:
        permission["Ipv6Ranges"] = [{"CidrIpv6": i["cidrIpv6"], "Description": i["description"]}]
    return permission


def _tags(kind: str, registration: Registration, stack: str) -> list[dict]:
    tags = {**registration.inputs.get("tags", {}), "kumomta-stack": stack}
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
