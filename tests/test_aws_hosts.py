"""AWS hosts: hardened instances, protected sending IPs and spool, PTR = FQDN, DNS, outputs."""

from tests.stacks import RULE_TYPES, run

INSTANCE = "aws:ec2/instance:Instance"
EIP = "aws:ec2/eip:Eip"


def test_instances_require_imdsv2_and_encrypt_the_root_volume():
    for instance in run().of_type(INSTANCE):
        assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
        assert instance.inputs["rootBlockDevice"]["encrypted"] is True


def test_instances_run_with_the_ssm_managed_role_of_their_own_role():
    result = run()
    attachments = {
        a.inputs["role"]: a.inputs["policyArn"]
        for a in result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    profiles = {p.state["name"]: p.inputs["role"] for p in result.of_type("aws:iam/instanceProfile:InstanceProfile")}
    for instance in result.of_type(INSTANCE):
        role_name = profiles[instance.inputs["iamInstanceProfile"]]
        assert attachments[role_name] == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
        assert role_name.startswith(instance.inputs["tags"]["kumomta-role"] + "-role")


def test_instances_security_groups_and_ips_carry_the_role_tag():
    result = run()
    for kind in (INSTANCE, EIP, "aws:ec2/securityGroup:SecurityGroup"):
        roles = sorted(r.inputs["tags"]["kumomta-role"] for r in result.of_type(kind))
        assert roles == ["mta", "proxy"], kind
        assert all(r.inputs["tags"]["kumomta-stack"] == "prod" for r in result.of_type(kind))


def test_ubuntu_2204_and_a_new_image_never_replaces_a_running_host():
    result = run()
    for instance in result.of_type(INSTANCE):
        assert "ami" in instance.ignore_changes and "userDataBase64" in instance.ignore_changes
    pinned = run(aws={"amiId": "ami-0123456789abcdef0"})
    assert {i.inputs["ami"] for i in pinned.of_type(INSTANCE)} == {"ami-0123456789abcdef0"}


def test_sending_ips_are_protected_and_retained():
    eips = run().of_type(EIP)
    assert len(eips) == 2
    for eip in eips:
        assert eip.protect and eip.retain_on_delete
        assert eip.inputs["domain"] == "vpc"


def test_the_spool_is_its_own_encrypted_volume_that_outlives_the_host():
    result = run()
    (volume,) = result.of_type("aws:ebs/volume:Volume")
    assert volume.inputs["encrypted"] is True
    assert volume.protect and volume.retain_on_delete
    (attachment,) = result.of_type("aws:ec2/volumeAttachment:VolumeAttachment")
    assert attachment.inputs["volumeId"] == volume.id
    assert attachment.inputs["instanceId"] == result.by_name("mta-instance").id
    # A replaced instance needs a new attachment, so the attachment must not inherit protection.
    assert not attachment.protect


def test_only_the_sending_ips_and_spool_are_protected():
    protected = {r.name for r in run().registrations if r.protect}
    assert protected == {"mta-eip", "proxy-eip", "mta-spool"}


def test_the_eip_is_on_the_interface_before_the_instance_boots():
    result = run()
    for label in ("mta", "proxy"):
        eni, eip = result.by_name(f"{label}-eni"), result.by_name(f"{label}-eip")
        association = result.by_name(f"{label}-eip-assoc")
        instance = result.by_name(f"{label}-instance")
        assert association.inputs == {"allocationId": eip.state["allocationId"], "networkInterfaceId": eni.id}
        assert instance.inputs["primaryNetworkInterface"]["networkInterfaceId"] == eni.id
        assert association.urn in instance.depends_on


def test_ptr_equals_fqdn_and_waits_for_the_forward_record():
    result = run()
    for label in ("mta", "proxy"):
        ptr, eip, record = (result.by_name(f"{label}-{part}") for part in ("ptr", "eip", "a"))
        assert ptr.inputs["domainName"] == f"{label}.yourdomain.com"
        assert ptr.inputs["allocationId"] == eip.state["allocationId"]
        assert record.urn in ptr.depends_on


def test_route53_a_records_point_at_the_sending_ips():
    result = run()
    for label in ("mta", "proxy"):
        record = result.by_name(f"{label}-a")
        assert record.inputs["zoneId"] == "Z0123456789ABCDEFGHIJ"
        assert (record.inputs["name"], record.inputs["type"]) == (f"{label}.yourdomain.com", "A")
        assert record.inputs["records"] == [result.by_name(f"{label}-eip").state["publicIp"]]
    assert {r.inputs["type"] for r in result.of_type("aws:route53/record:Record")} == {"A", "TXT"}


def test_ipv6_adds_aaaa_records_and_an_ipv6_route():
    result = run(ipv6=True)
    types = sorted(r.inputs["type"] for r in result.of_type("aws:route53/record:Record") if r.inputs["type"] != "TXT")
    assert types == ["A", "A", "AAAA", "AAAA"]
    assert result.by_name("public-default-v6").inputs["destinationIpv6CidrBlock"] == "::/0"
    # The IPv6 address each AAAA record names is the output `make verify` checks SPF and PTR against.
    aaaa = {r.inputs["name"]: r.inputs["records"] for r in result.of_type("aws:route53/record:Record")
            if r.inputs["type"] == "AAAA"}  # fmt: skip
    assert {h["fqdn"]: [h["publicIpv6"]] for h in result.outputs["hosts"].values()} == aaaa
    assert all(h["publicIpv6"] is None for h in run().outputs["hosts"].values())


def test_dedicated_vpc_has_a_subnet_per_role_inside_it():
    result = run()
    vpc = result.by_name("vpc")
    assert vpc.inputs["cidrBlock"] == "10.42.0.0/16"
    subnets = {s.inputs["tags"]["kumomta-role"]: s.inputs for s in result.of_type("aws:ec2/subnet:Subnet")}
    assert subnets["mta"]["cidrBlock"] == "10.42.1.0/24" and subnets["proxy"]["cidrBlock"] == "10.42.2.0/24"
    assert all(s["vpcId"] == vpc.id and s["mapPublicIpOnLaunch"] is False for s in subnets.values())


def test_an_existing_network_builds_no_vpc():
    result = run(aws={"vpcId": "vpc-0abc", "subnetId": "subnet-0abc"})
    assert not result.of_type("aws:ec2/vpc:Vpc")
    assert not result.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert {g.inputs["vpcId"] for g in result.of_type("aws:ec2/securityGroup:SecurityGroup")} == {"vpc-0abc"}
    enis = result.of_type("aws:ec2/networkInterface:NetworkInterface")
    assert {e.inputs["subnetId"] for e in enis} == {"subnet-0abc"}


def test_stack_outputs_give_each_hosts_fqdn_and_addresses():
    result = run()
    hosts = result.outputs["hosts"]
    assert set(hosts) == {"mta", "proxy"}
    for label, host in hosts.items():
        assert host["fqdn"] == f"{label}.yourdomain.com"
        assert host["publicIp"] == result.by_name(f"{label}-eip").state["publicIp"]
        assert host["privateIp"] == result.by_name(f"{label}-eni").state["privateIp"]


def test_resource_names_are_stable_so_a_refactor_replaces_nothing():
    urns = {r.urn for r in run().registrations}
    assert {
        "urn:pulumi:prod::kumomta-infra::kumomta:index:MtaHost$aws:ec2/eip:Eip::mta-eip",
        "urn:pulumi:prod::kumomta-infra::kumomta:index:ProxyHost$aws:ec2/eip:Eip::proxy-eip",
        "urn:pulumi:prod::kumomta-infra::kumomta:index:MtaHost$aws:ebs/volume:Volume::mta-spool",
        "urn:pulumi:prod::kumomta-infra::kumomta:index:ProxyHost$aws:ec2/instance:Instance::proxy-instance",
    } <= urns


def test_group_and_rule_descriptions_use_only_what_ec2_accepts():
    """EC2 CreateSecurityGroup / AuthorizeSecurityGroupIngress: "Constraints: Up to 255 characters in length.
    Allowed characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html). The provider
    checks only the length, so a quote passes preview and fails the first `up`."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*")
    result = run(ipv6=True, adminCidrs=["192.0.2.0/29"], trustedCidrs=["198.51.100.0/28"])
    kinds = ("aws:ec2/securityGroup:SecurityGroup", *RULE_TYPES)
    described = [r for kind in kinds for r in result.of_type(kind)]
    assert len(described) > 20
    for reg in described:
        text = reg.inputs["description"]
        assert 0 < len(text) <= 255 and set(text) <= allowed, (reg.name, text)


def test_the_address_and_the_instance_wait_for_the_internet_gateway_and_the_routes():
    """pulumi-aws `ec2.Eip`: "EIP may require IGW to exist prior to association. Use depends_on to set an
    explicit dependency on the IGW." A host that boots before its default route fails its first-boot installs."""
    result = run()
    needed = {result.by_name(n).urn for n in ("igw", "public-default", "mta-subnet-rt", "proxy-subnet-rt")}
    for host in ("mta", "proxy"):
        assert needed <= set(result.by_name(f"{host}-eip-assoc").depends_on)
        instance = result.by_name(f"{host}-instance")
        assert needed | {result.by_name(f"{host}-eip-assoc").urn} <= set(instance.depends_on)


def test_the_root_volume_is_tagged_through_its_block_device_not_volume_tags():
    """pulumi-aws `ec2.Instance`: volume_tags apply to every volume attached to the instance, so with a separately
    attached `ebs.Volume` they overwrite its tags and cycle on every update; use root_block_device.tags."""
    result = run()
    for host in ("mta", "proxy"):
        instance = result.by_name(f"{host}-instance")
        assert "volumeTags" not in instance.inputs
        assert instance.inputs["rootBlockDevice"]["tags"]["Name"] == f"prod-{host}-root"
    (spool,) = result.of_type("aws:ebs/volume:Volume")
    assert spool.inputs["tags"]["Name"] == "prod-mta-spool"


# vCPUs of the MTA's default types: c6i.xlarge 4 (AWS EC2 User Guide, "Compute optimized instances", C6i);
# Hetzner cx33 4 (Hetzner Cloud server types, "Cost-Optimized": cx23 2, cx33 4, cx43 8, cx53 16).
VCPUS = {"c6i.xlarge": 4, "cx33": 4}


def test_the_default_mta_has_the_4_cores_kumod_asks_for():
    """kumod logs an error at start on fewer than 4 cores (KumoCorp/kumomta crates/kumod/src/main.rs,
    `num_cores < 4`), as KumoMTA's hardware guide asks for at least 4 (docs/userguide/installation/hardware.md)."""
    from components.settings import AwsSettings, HcloudSettings

    aws, hcloud = AwsSettings().mta_instance_type, HcloudSettings().mta_server_type
    assert VCPUS[aws] >= 4 and not aws.startswith("t")  # not burstable: a sending MTA is busy for hours
    assert VCPUS[hcloud] >= 4
