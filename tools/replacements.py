"""Which input changes replace a resource, per resource type the program registers: data, with its source.

pulumi-aws, pulumi-hcloud and pulumi-random are bridged Terraform providers: the bridge replaces a
resource exactly when a changed attribute is `ForceNew` (SDKv2) or has a `RequiresReplace` plan
modifier (plugin framework) in the Terraform provider's schema. Pulumi's schema.json does not carry
that flag, so each entry names the Terraform source (or documentation) it was read from. Paths are
Pulumi input names (camelCase), dotted into nested blocks; a path not listed falls back to its
nearest listed parent. `effects` say what an in-place change does to the running system.
"""

from dataclasses import dataclass, field
from types import MappingProxyType

_AWS = "https://github.com/hashicorp/terraform-provider-aws/blob/main/"
_HCLOUD = "https://github.com/hetznercloud/terraform-provider-hcloud/blob/v1.68.0/"
_RANDOM = "https://github.com/hashicorp/terraform-provider-random/blob/main/"
_TLS = "https://github.com/hashicorp/terraform-provider-tls/blob/main/"

# Tags are updated in place on every AWS resource here (CreateTags/DeleteTags).
_TAGS = ("tags",)


@dataclass(frozen=True)
class TypeRules:
    """How one resource type takes a change."""

    source: str
    replace: frozenset[str]
    in_place: frozenset[str]
    effects: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    cannot_shrink: frozenset[str] = frozenset()
    """Numbers the cloud refuses to lower: such a change is planned as an update that will fail."""

    def classify(self, path: str) -> str:
        """`replace`, `update`, or `unknown` for a changed input path such as `rootBlockDevice.volumeSize`."""
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in self.replace:
                return "replace"
            if prefix in self.in_place:
                return "update"
        return "unknown"

    def effect(self, path: str) -> str | None:
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            text = self.effects.get(".".join(parts[:end]))
            if text:
                return text
        return None


def _rules(source: str, replace=(), in_place=(), effects=None, cannot_shrink=()) -> TypeRules:
    return TypeRules(
        source=source,
        replace=frozenset(replace),
        in_place=frozenset(in_place),
        effects=MappingProxyType(dict(effects or {})),
        cannot_shrink=frozenset(cannot_shrink),
    )


_SG_RULE = _rules(
    # Plugin-framework resource: only security_group_id has RequiresReplace; the rest is
    # ModifySecurityGroupRules on the same rule ID.
    _AWS + "internal/service/ec2/vpc_security_group_ingress_rule.go",
    replace=("securityGroupId",),
    in_place=(
        "cidrIpv4",
        "cidrIpv6",
        "description",
        "fromPort",
        "toPort",
        "ipProtocol",
        "prefixListId",
        "referencedSecurityGroupId",
        *_TAGS,
    ),
)

TYPES: dict[str, TypeRules] = {
    "aws:ebs/volume:Volume": _rules(
        _AWS + "internal/service/ec2/ebs_volume.go (size and type: ModifyVolume)",
        replace=("availabilityZone", "encrypted", "kmsKeyId", "multiAttachEnabled", "outpostArn", "snapshotId"),
        in_place=("size", "type", "iops", "throughput", "finalSnapshot", *_TAGS),
        effects={
            "size": "in place while attached (EBS Elastic Volumes); the host grows its file system within 5 minutes "
            "(kumomta-spool-grow.timer); wait 6 hours before the next change to this volume",
            "type": "in place while attached (EBS Elastic Volumes)",
        },
        # https://docs.aws.amazon.com/ebs/latest/userguide/modify-volume-requirements.html:
        # "You can't decrease the size of an EBS volume."
        cannot_shrink=("size",),
    ),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": _rules(
        _AWS + "internal/service/ec2/vpc_default_security_group.go",
        replace=("vpcId",),
        in_place=("ingress", "egress", "revokeRulesOnDelete", *_TAGS),
    ),
    "aws:ec2/eip:Eip": _rules(
        _AWS + "internal/service/ec2/ec2_eip.go",
        replace=("domain", "address", "customerOwnedIpv4Pool", "networkBorderGroup", "publicIpv4Pool", "ipamPoolId"),
        in_place=("instance", "networkInterface", "associateWithPrivateIp", *_TAGS),
    ),
    "aws:ec2/eipAssociation:EipAssociation": _rules(
        _AWS + "internal/service/ec2/ec2_eip_association.go (no update: every argument is ForceNew)",
        replace=(
            "allocationId",
            "networkInterfaceId",
            "instanceId",
            "privateIpAddress",
            "publicIp",
            "allowReassociation",
        ),
    ),
    "aws:ec2/eipDomainName:EipDomainName": _rules(
        _AWS + "internal/service/ec2/ec2_eip_domain_name.go (allocation_id: RequiresReplace)",
        replace=("allocationId",),
        in_place=("domainName",),
        effects={"domainName": "in place: the PTR record of the sending IP changes"},
    ),
    "aws:ec2/instance:Instance": _rules(
        _AWS + "internal/service/ec2/ec2_instance.go and website/docs/r/instance.html.markdown "
        '("Modifying the encrypted or kms_key_id settings of the root_block_device requires resource replacement"); '
        "the primary ENI cannot be detached from a running instance "
        "(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-eni.html)",
        replace=(
            "ami",
            "availabilityZone",
            "primaryNetworkInterface",
            "subnetId",
            "privateIp",
            "keyName",
            "ipv6AddressCount",
            "ipv6Addresses",
            "placementGroup",
            "hibernation",
            "launchTemplate",
            "ebsBlockDevices",
            "ephemeralBlockDevices",
            "associatePublicIpAddress",
            "rootBlockDevice.encrypted",
            "rootBlockDevice.kmsKeyId",
        ),
        in_place=(
            "instanceType",
            "iamInstanceProfile",
            "metadataOptions",
            "rootBlockDevice",
            "userData",
            "userDataBase64",
            "userDataReplaceOnChange",
            "vpcSecurityGroupIds",
            "disableApiTermination",
            "disableApiStop",
            "monitoring",
            "sourceDestCheck",
            "volumeTags",
            *_TAGS,
        ),
        effects={
            # pulumi_aws/ec2/instance.py, instance_type: "Updates to this field will trigger a stop/start
            # of the EC2 instance." (tests/test_plan_diff.py checks the installed package still says so)
            "instanceType": "in place with a stop/start: minutes of downtime; the Elastic IP, the ENI and the "
            "EBS volumes stay attached",
            "userDataBase64": "in place with a stop/start; cloud-init does not run it again on a booted host",
            "rootBlockDevice.volumeSize": "in place (EBS Elastic Volumes); the root file system grows at the next boot",
            "metadataOptions": "in place on the running instance",
        },
    ),
    "aws:ec2/internetGateway:InternetGateway": _rules(
        _AWS + "internal/service/ec2/vpc_internet_gateway.go (vpc_id: detach and attach)",
        in_place=("vpcId", *_TAGS),
    ),
    "aws:ec2/networkInterface:NetworkInterface": _rules(
        _AWS + "internal/service/ec2/vpc_network_interface.go",
        replace=("subnetId", "interfaceType", "privateIp"),
        in_place=(
            "securityGroups",
            "description",
            "ipv6AddressCount",
            "ipv6Addresses",
            "privateIps",
            "sourceDestCheck",
            *_TAGS,
        ),
    ),
    "aws:ec2/route:Route": _rules(
        _AWS + "internal/service/ec2/vpc_route.go (targets: ReplaceRoute)",
        replace=("routeTableId", "destinationCidrBlock", "destinationIpv6CidrBlock", "destinationPrefixListId"),
        in_place=("gatewayId", "natGatewayId", "networkInterfaceId", "egressOnlyGatewayId", "transitGatewayId"),
    ),
    "aws:ec2/routeTable:RouteTable": _rules(
        _AWS + "internal/service/ec2/vpc_route_table.go",
        replace=("vpcId",),
        in_place=("routes", "propagatingVgws", *_TAGS),
    ),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _rules(
        _AWS + "internal/service/ec2/vpc_route_table_association.go (route_table_id: ReplaceRouteTableAssociation)",
        replace=("subnetId", "gatewayId"),
        in_place=("routeTableId",),
    ),
    "aws:ec2/securityGroup:SecurityGroup": _rules(
        _AWS + "internal/service/ec2/vpc_security_group.go (name, description and vpc_id are ForceNew)",
        replace=("name", "namePrefix", "description", "vpcId"),
        in_place=("ingress", "egress", "revokeRulesOnDelete", *_TAGS),
    ),
    "aws:ec2/subnet:Subnet": _rules(
        _AWS + "internal/service/ec2/vpc_subnet.go",
        replace=("vpcId", "cidrBlock", "availabilityZone", "availabilityZoneId", "outpostArn"),
        in_place=(
            "mapPublicIpOnLaunch",
            "ipv6CidrBlock",
            "assignIpv6AddressOnCreation",
            "enableDns64",
            "enableResourceNameDnsARecordOnLaunch",
            "enableResourceNameDnsAaaaRecordOnLaunch",
            "privateDnsHostnameTypeOnLaunch",
            *_TAGS,
        ),
    ),
    "aws:ec2/volumeAttachment:VolumeAttachment": _rules(
        _AWS + "internal/service/ec2/ec2_volume_attachment.go (device_name, instance_id, volume_id: ForceNew)",
        replace=("deviceName", "instanceId", "volumeId"),
        in_place=("stopInstanceBeforeDetaching", "skipDestroy", "forceDetach"),
    ),
    "aws:ec2/vpc:Vpc": _rules(
        _AWS + "internal/service/ec2/vpc_.go",
        replace=("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"),
        in_place=(
            "enableDnsHostnames",
            "enableDnsSupport",
            "assignGeneratedIpv6CidrBlock",
            "instanceTenancy",
            "enableNetworkAddressUsageMetrics",
            *_TAGS,
        ),
    ),
    "aws:iam/instanceProfile:InstanceProfile": _rules(
        _AWS + "internal/service/iam/instance_profile.go",
        replace=("name", "namePrefix", "path"),
        in_place=("role", *_TAGS),
    ),
    "aws:iam/role:Role": _rules(
        _AWS + "internal/service/iam/role.go",
        replace=("name", "namePrefix", "path"),
        in_place=(
            "assumeRolePolicy",
            "description",
            "maxSessionDuration",
            "permissionsBoundary",
            "forceDetachPolicies",
            "inlinePolicies",
            "managedPolicyArns",
            *_TAGS,
        ),
    ),
    "aws:iam/rolePolicy:RolePolicy": _rules(
        _AWS + "internal/service/iam/role_policy.go",
        replace=("name", "namePrefix", "role"),
        in_place=("policy",),
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _rules(
        _AWS + "internal/service/iam/role_policy_attachment.go (no update)",
        replace=("role", "policyArn"),
    ),
    "aws:route53/record:Record": _rules(
        _AWS + "internal/service/route53/record.go (name and zone_id: ForceNew; the rest UPSERT)",
        replace=("name", "zoneId"),
        in_place=("type", "records", "ttl", "aliases", "setIdentifier", "allowOverwrite", "healthCheckId"),
    ),
    "aws:kms/key:Key": _rules(
        _AWS + "internal/service/kms/key.go (customer_master_key_spec, key_usage, multi_region, custom_key_store_id, "
        "xks_key_id: ForceNew; the policy: PutKeyPolicy)",
        replace=("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"),
        in_place=(
            "description",
            "policy",
            "enableKeyRotation",
            "rotationPeriodInDays",
            "isEnabled",
            "deletionWindowInDays",
            "bypassPolicyLockoutSafetyCheck",
            *_TAGS,
        ),
        effects={"policy": "in place: who may use the stack's secrets key changes at once"},
    ),
    "aws:kms/alias:Alias": _rules(
        _AWS + "internal/service/kms/alias.go (name: ForceNew; target_key_id: UpdateAlias)",
        replace=("name", "namePrefix"),
        in_place=("targetKeyId",),
    ),
    "tls:index/privateKey:PrivateKey": _rules(
        # Plugin framework: every attribute has RequiresReplace; a new key is a new resource.
        _TLS + "internal/provider/resource_private_key.go",
        replace=("algorithm", "rsaBits", "ecdsaCurve"),
    ),
    "command:remote:Command": _rules(
        # A native provider: a change to `triggers` replaces the resource, which runs `create` again; any other
        # input change runs `update` (https://www.pulumi.com/registry/packages/command/api-docs/remote/command/).
        "https://github.com/pulumi/pulumi-command/blob/master/provider/pkg/provider/remote/command.go",
        replace=("triggers",),
        in_place=(
            "connection",
            "create",
            "update",
            "delete",
            "stdin",
            "environment",
            "logging",
            "addPreviousOutputInEnv",
        ),
        effects={"triggers": "the push runs again: the host applies its bundle (kumomta-apply)"},
    ),
    "aws:ssm/parameter:Parameter": _rules(
        _AWS + "internal/service/ssm/parameter.go (name: ForceNew; the value: PutParameter with Overwrite)",
        replace=("name",),
        in_place=("value", "insecureValue", "type", "description", "tier", "keyId", "dataType", *_TAGS),
    ),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _SG_RULE,
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": _SG_RULE,
    "hcloud:index/firewall:Firewall": _rules(
        _HCLOUD + "internal/firewall/resource.go (rules: set_rules on the same firewall)",
        in_place=("name", "labels", "rules", "applyTos"),
    ),
    "hcloud:index/network:Network": _rules(
        _HCLOUD + "internal/network/resource.go",
        replace=("ipRange",),
        in_place=("name", "labels", "deleteProtection", "exposeRoutesToVswitch"),
    ),
    "hcloud:index/networkSubnet:NetworkSubnet": _rules(
        _HCLOUD + "internal/network/resource_subnet.go (no update)",
        replace=("networkId", "type", "networkZone", "ipRange", "vswitchId"),
    ),
    "hcloud:index/primaryIp:PrimaryIp": _rules(
        _HCLOUD + "internal/primaryip/resource.go (type and location: RequiresReplace)",
        replace=("type", "location", "datacenter"),
        in_place=("name", "labels", "autoDelete", "deleteProtection", "assigneeId", "assigneeType"),
    ),
    "hcloud:index/rdns:Rdns": _rules(
        _HCLOUD + "internal/rdns/resource.go",
        replace=("serverId", "primaryIpId", "floatingIpId", "loadBalancerId", "ipAddress"),
        in_place=("dnsPtr",),
        effects={"dnsPtr": "in place: the PTR record of the sending IP changes"},
    ),
    "hcloud:index/server:Server": _rules(
        _HCLOUD + "internal/server/resource.go (image, location, user_data and ssh_keys: ForceNew)",
        replace=("image", "location", "datacenter", "userData", "sshKeys"),
        in_place=(
            "name",
            "serverType",
            "backups",
            "labels",
            "publicNets",
            "networks",
            "firewallIds",
            "placementGroupId",
            "deleteProtection",
            "rebuildProtection",
            "shutdownBeforeDeletion",
            "keepDisk",
            "iso",
            "rescue",
            "allowDeprecatedImages",
            "ignoreRemoteFirewallIds",
        ),
        effects={
            # resource.go, resourceServerUpdate: Poweroff (a hard power cut), ChangeType(UpgradeDisk: !keep_disk),
            # then power on.
            "serverType": "in place: the provider cuts power (no clean shutdown: stop kumod first), changes the type and powers the "
            "server on again; the disk grows too unless keepDisk, after which the type can't go back down",
            "firewallIds": "in place: the firewall is attached to or detached from the running server",
        },
    ),
    "hcloud:index/volume:Volume": _rules(
        _HCLOUD + "internal/volume/resource.go (size: Volume.Resize)",
        replace=("location",),
        in_place=("name", "size", "labels", "automount", "format", "deleteProtection", "serverId"),
        effects={
            "size": "in place while attached; the host grows its file system within 5 minutes "
            "(kumomta-spool-grow.timer)",
        },
        # https://docs.hetzner.cloud/reference/cloud#volume-actions-resize-volume:
        # "Note that downsizing a Volume is not possible."
        cannot_shrink=("size",),
    ),
    "hcloud:index/volumeAttachment:VolumeAttachment": _rules(
        _HCLOUD + "internal/volume/resource_attachment.go",
        replace=("volumeId", "serverId"),
        in_place=("automount",),
    ),
    "hcloud:index/zone:Zone": _rules(
        _HCLOUD + "internal/zone/resource.go (name and mode: RequiresReplace)",
        replace=("name", "mode"),
        in_place=("ttl", "labels", "deleteProtection", "primaryNameservers"),
    ),
    "hcloud:index/zoneRrset:ZoneRrset": _rules(
        _HCLOUD + "internal/zonerrset/resource.go (zone, name and type: RequiresReplace)",
        replace=("zone", "name", "type"),
        in_place=("ttl", "records", "labels", "changeProtection"),
    ),
    "random:index/randomPassword:RandomPassword": _rules(
        _RANDOM + "internal/provider/resource_password.go (every argument: RequiresReplace)",
        replace=(
            "length",
            "special",
            "upper",
            "lower",
            "numeric",
            "number",
            "minLower",
            "minUpper",
            "minNumeric",
            "minSpecial",
            "overrideSpecial",
            "keepers",
        ),
    ),
}
