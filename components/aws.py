"""AWS backend: a VPC with one public subnet per role, a security group per role built from the
matrix, an SSM-managed instance role, and per host an ENI, a protected Elastic IP and an instance.

The Elastic IP is associated with the ENI before the instance boots, so first-boot package
installs already leave from the sending IP, and a replaced instance comes back on the same
private and public addresses.
"""

import base64
import gzip
import ipaddress
import json
import re

import pulumi
import pulumi_aws as aws

from components import matrix
from components.bootstrap import Bundle, Secret, SsmChannel, first_boot
from components.bootstrap.userdata import pack
from components.hosts import Machine, ownership
from components.matrix import Role
from components.settings import Settings

CANONICAL = "099720109477"
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
SPOOL_DEVICE = "/dev/sdf"

# What EC2 accepts in security group and rule descriptions (CreateSecurityGroup API reference,
# GroupDescription: "a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"). The provider checks only
# the length, so anything else passes preview and fails the create.
EC2_DESCRIPTION = re.compile(r"^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}$")

# Key administration without the right to use the key: the default key policy's administrator
# actions (AWS KMS developer guide, "Allows key administrators to administer the KMS key"), with
# kms:CreateGrant left out, because a grant could hand Decrypt to any principal in the account.
_KEY_ADMIN_ACTIONS = [
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]
_KEY_USER_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def tags(role: Role | None, name: str) -> dict[str, str]:
    """Ownership tags, plus the Name the AWS console shows (a tag value holds 256 characters: EC2 Tag)."""
    return {"Name": f"{pulumi.get_stack()}-{name}"[:256], **ownership(role)}


class AwsNetwork(pulumi.ComponentResource):
    """A dedicated VPC whose default security group is adopted and emptied, or an existing subnet."""

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:aws:Network", name, None, opts)
        conf = settings.aws
        if conf.vpc_id is not None:
            existing = aws.ec2.get_subnet_output(id=conf.subnet_id, opts=pulumi.InvokeOptions(parent=self))
            self.vpc_id = pulumi.Output.from_input(conf.vpc_id)
            self.subnet_ids = dict.fromkeys(Role, pulumi.Output.from_input(conf.subnet_id))
            self.subnet_cidrs = dict.fromkeys(Role, existing.cidr_block)
            self.zones = dict.fromkeys(Role, existing.availability_zone)
            self.internet: list[pulumi.Resource] = []  # the existing subnet's routing is the operator's
            self.register_outputs({"vpcId": self.vpc_id})
            return

        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            "vpc",
            cidr_block=str(conf.vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            assign_generated_ipv6_cidr_block=settings.ipv6 or None,
            tags=tags(None, "vpc"),
            opts=child,
        )
        under_vpc = pulumi.ResourceOptions(parent=vpc)
        # Adopting the default group strips its allow-all rules; nothing uses it, and nothing may.
        aws.ec2.DefaultSecurityGroup("default-sg", vpc_id=vpc.id, tags=tags(None, "default-sg"), opts=under_vpc)
        igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags=tags(None, "igw"), opts=under_vpc)
        table = aws.ec2.RouteTable("public-rt", vpc_id=vpc.id, tags=tags(None, "public-rt"), opts=under_vpc)
        under_table = pulumi.ResourceOptions(parent=table)
        defaults = {"public-default": {"destination_cidr_block": "0.0.0.0/0"}}
        if settings.ipv6:
            defaults["public-default-v6"] = {"destination_ipv6_cidr_block": "::/0"}
        # What a host needs before its address is associated and before it boots: the pulumi-aws
        # `ec2.Eip` docs say an EIP "may require IGW to exist prior to association", and first-boot
        # installs fail without the default route.
        self.internet = [igw]
        for route, destination in defaults.items():
            self.internet.append(
                aws.ec2.Route(route, route_table_id=table.id, gateway_id=igw.id, opts=under_table, **destination)
            )

        cidrs = {Role.MTA: conf.mta_subnet_cidr, Role.PROXY: conf.proxy_subnet_cidr}
        self.vpc_id = vpc.id
        self.subnet_ids, self.subnet_cidrs, self.zones = {}, {}, {}
        for index, role in enumerate(Role, start=1):
            subnet = aws.ec2.Subnet(
                f"{role}-subnet",
                vpc_id=vpc.id,
                cidr_block=str(cidrs[role]),
                availability_zone=conf.availability_zone,
                map_public_ip_on_launch=False,
                ipv6_cidr_block=vpc.ipv6_cidr_block.apply(lambda block, i=index: _ipv6_subnet(block, i))
                if settings.ipv6
                else None,
                tags=tags(role, f"{role}-subnet"),
                opts=under_vpc,
            )
            self.internet.append(
                aws.ec2.RouteTableAssociation(
                    f"{role}-subnet-rt",
                    subnet_id=subnet.id,
                    route_table_id=table.id,
                    opts=pulumi.ResourceOptions(parent=subnet),
                )
            )
            self.subnet_ids[role] = subnet.id
            self.subnet_cidrs[role] = pulumi.Output.from_input(str(cidrs[role]))
            self.zones[role] = subnet.availability_zone
        self.register_outputs({"vpcId": self.vpc_id, "subnetIds": self.subnet_ids})


class AwsFirewalls(pulumi.ComponentResource):
    """One security group per role holding exactly the matrix rules, one source per rule resource.

    The provider removes AWS's implicit allow-all egress when it creates a group, so outbound is
    what the matrix says and nothing more. Host-group peers are referenced security groups, so
    the rule count does not grow with the fleet.
    """

    def __init__(self, name: str, settings: Settings, vpc_id: pulumi.Input[str], opts=None):
        super().__init__("kumomta:aws:Firewalls", name, None, opts)
        self.groups = {
            role: aws.ec2.SecurityGroup(
                f"{role}-sg",
                vpc_id=vpc_id,
                description=ec2_description(f"KumoMTA {matrix.ROLE_TITLES[role]}: the port matrix, nothing more"),
                tags=tags(role, f"{role}-sg"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for role in Role
        }
        for role, group in self.groups.items():
            for rule in matrix.rules(role, settings):
                kind = (
                    aws.vpc.SecurityGroupIngressRule if rule.row.direction == "in" else aws.vpc.SecurityGroupEgressRule
                )
                kind(
                    f"{role}-{rule.name}",
                    security_group_id=group.id,
                    ip_protocol=rule.protocol,
                    from_port=rule.port,
                    to_port=rule.port,
                    description=ec2_description(rule.row.purpose),
                    tags=tags(role, f"{role}-{rule.name}"),
                    opts=pulumi.ResourceOptions(parent=group),
                    **_peer(rule, self.groups),
                )
        self.group_ids = {role: group.id for role, group in self.groups.items()}
        self.register_outputs({"groupIds": self.group_ids})


class AwsSite(pulumi.ComponentResource):
    """Everything hosts share on AWS, the day-2 channel (SSM Parameter Store), and the builder of per-host parts."""

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:aws:Site", name, None, opts)
        self.settings = settings
        self.region = aws.config.region
        if not self.region:
            # A RunError is reported as this one line, like the kumomta:* config errors.
            raise pulumi.RunError("aws:region: is required; the hosts read their configuration from SSM there")
        invoke = pulumi.InvokeOptions(parent=self)
        self._caller = aws.get_caller_identity_output(opts=invoke)
        self._partition = aws.get_partition_output(opts=invoke).partition
        child = pulumi.ResourceOptions(parent=self)
        self.network = AwsNetwork("network", settings, child)
        self.firewalls = AwsFirewalls("firewalls", settings, self.network.vpc_id, child)
        self.roles = {role: self._instance_role(role) for role in Role}
        self.profiles = {
            role: aws.iam.InstanceProfile(
                f"{role}-profile",
                role=iam.name,
                tags=tags(role, f"{role}-profile"),
                opts=pulumi.ResourceOptions(parent=iam),
            )
            for role, iam in self.roles.items()
        }
        self.secrets_key = self._secrets_key()
        self._amis: dict[str, pulumi.Output[str]] = {}
        self.register_outputs({"vpcId": self.network.vpc_id})

    def _instance_role(self, role: Role) -> aws.iam.Role:
        iam = aws.iam.Role(
            f"{role}-role",
            assume_role_policy=_EC2_TRUST,
            description=f"KumoMTA {role} instances: SSM Session Manager and Run Command, their configuration",
            tags=tags(role, f"{role}-role"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicyAttachment(
            f"{role}-ssm-core", role=iam.name, policy_arn=SSM_CORE, opts=pulumi.ResourceOptions(parent=iam)
        )
        aws.iam.RolePolicy(
            f"{role}-read-config",
            role=iam.id,
            policy=pulumi.Output.all(self._partition, self._caller.account_id).apply(
                lambda a: _read_parameters(_parameter_arn(a[0], self.region, a[1], _role_path(role)) + "/*")
            ),
            opts=pulumi.ResourceOptions(parent=iam),
        )
        return iam

    def _secrets_key(self) -> aws.kms.Key:
        """The key of the stack's secrets: only the MTA role (through SSM) and the deployers may decrypt.

        `AmazonSSMManagedInstanceCore` lets every managed instance call ssm:GetParameter on any
        parameter, the proxies included, so reading is not what guards a secret: decrypting is.
        """
        stack = pulumi.get_stack()
        key = aws.kms.Key(
            "secrets-key",
            description=f"KumoMTA {stack}: stack secrets; only the MTA role (through SSM) and the deployers decrypt",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(
                account=self._caller.account_id,
                partition=self._partition,
                deployers=self._deployers(self._caller.arn),
                mta_role=self.roles[Role.MTA].arn,
            ).apply(lambda a: _key_policy(region=self.region, stack=stack, **a)),
            tags=tags(Role.MTA, "secrets-key"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(
            "secrets-key-alias",
            # KMS CreateAlias: AliasName matches ^[a-zA-Z0-9:/_-]+$; a Pulumi stack name may also hold '.'.
            name=f"alias/kumomta-{re.sub(r'[^a-zA-Z0-9_-]', '_', stack)}-secrets",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=key),
        )
        return key

    def _deployers(self, caller_arn: pulumi.Output[str]) -> pulumi.Output[list[str]]:
        """`aws.deployerArns`, or the IAM role or user running `pulumi up` (not its temporary session)."""
        if self.settings.aws.deployer_arns:
            return pulumi.Output.from_input(list(self.settings.aws.deployer_arns))
        session = aws.iam.get_session_context_output(arn=caller_arn, opts=pulumi.InvokeOptions(parent=self))
        return session.issuer_arn.apply(lambda arn: [arn])

    def secret(self, name: str, content: pulumi.Output[str], description: str) -> pulumi.Output[Secret]:
        """A secret file of the MTAs as a SecureString under the secrets key: their agent fetches it, user data
        never holds it, and no other role can decrypt it."""
        parameter = aws.ssm.Parameter(
            name.replace("/", "-"),
            name=f"{_role_path(Role.MTA)}/secrets/{name}",
            type="SecureString",
            key_id=self.secrets_key.arn,
            value=pulumi.Output.secret(content),
            description=description,
            tags=tags(Role.MTA, name.replace("/", "-")),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return pulumi.Output.all(content, parameter.name).apply(lambda a: Secret(a[0], a[1]))

    def machine(self, host, name: str, role: Role, fqdn: str, bundle: pulumi.Output[Bundle]) -> Machine:
        conf = self.settings.aws
        instance_type = conf.mta_instance_type if role == Role.MTA else conf.proxy_instance_type
        under_host = pulumi.ResourceOptions(parent=host)
        # The day-2 channel: `up` writes the bundle here, kumomta-sync on the host polls it.
        # Named after the host's first label: a renamed host's agent keeps polling the name it booted with.
        parameter_name = f"{_role_path(role)}/{self.settings.first_label(name)}/bundle"
        published = aws.ssm.Parameter(
            f"{name}-bundle",
            name=parameter_name,
            type="String",
            # Standard parameters hold 4 KB, advanced ones 8 KB; this picks as the value needs.
            tier="Intelligent-Tiering",
            # Not secret: secrets are only named here, by parameter and hash, so `preview --diff` shows every
            # change. `value` is always a secret in pulumi-aws; `insecure_value` is its plain twin.
            insecure_value=pulumi.Output.unsecret(
                bundle.apply(lambda b: parameter_value(b.json(inline_secrets=False)))
            ),
            description=f"Configuration of {fqdn}, applied by kumomta-sync on the host",
            tags=tags(role, f"{name}-bundle"),
            opts=under_host,
        )
        eni = aws.ec2.NetworkInterface(
            f"{name}-eni",
            subnet_id=self.network.subnet_ids[role],
            security_groups=[self.firewalls.group_ids[role]],
            ipv6_address_count=1 if self.settings.ipv6 else None,
            description=f"{fqdn} primary interface",
            tags=tags(role, f"{name}-eni"),
            opts=under_host,
        )
        eip = aws.ec2.Eip(
            f"{name}-eip",
            domain="vpc",
            tags=tags(role, f"{name}-eip"),
            # The sending reputation lives on this address: never release it with the stack.
            opts=pulumi.ResourceOptions(parent=host, protect=True, retain_on_delete=True),
        )
        association = aws.ec2.EipAssociation(
            f"{name}-eip-assoc",
            allocation_id=eip.allocation_id,
            network_interface_id=eni.id,
            opts=pulumi.ResourceOptions(parent=host, depends_on=self.network.internet),
        )
        peer = Role.PROXY if role == Role.MTA else Role.MTA
        channel = SsmChannel(self.region, parameter_name)
        user_data = self.network.subnet_cidrs[peer].apply(
            lambda cidr: pack(first_boot(self.settings, name, role, channel, cidr))
        )
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=conf.ami_id or self._ami(_architecture(instance_type)),
            instance_type=instance_type,
            iam_instance_profile=self.profiles[role].name,
            primary_network_interface={"network_interface_id": eni.id},
            metadata_options={"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1},
            # Tagged here, not with `volume_tags`: those would also overwrite the spool volume's tags and
            # cycle on every update (pulumi-aws `ec2.Instance` docs, volume_tags).
            root_block_device={
                "encrypted": True,
                "volume_type": "gp3",
                "volume_size": conf.root_volume_gb,
                "tags": tags(role, f"{name}-root"),
            },
            user_data_base64=user_data,
            tags=tags(role, f"{name}-instance"),
            opts=pulumi.ResourceOptions(
                parent=host,
                # Its first boot fetches the bundle, so the parameter comes first, and the route to SSM.
                depends_on=[association, published, *self.network.internet],
                # A new AMI or first boot must not replace a running host; the bundle carries every later change.
                ignore_changes=["ami", "userDataBase64"],
                # The ENI can be attached to one instance at a time.
                delete_before_replace=True,
            ),
        )
        return Machine(
            public_ipv4=eip.public_ip,
            public_ipv6=eni.ipv6_addresses.apply(lambda addrs: addrs[0]) if self.settings.ipv6 else None,
            private_ip=eni.private_ip,
            instance_id=instance.id,
            sending_ip=eip,
            config_version=pulumi.Output.unsecret(bundle.apply(lambda b: b.version)),
        )

    def ptr(self, host, name: str, machine: Machine, fqdn: str, after: list[pulumi.Resource]) -> None:
        # AWS only sets the PTR once the forward record resolves to the address.
        aws.ec2.EipDomainName(
            f"{name}-ptr",
            allocation_id=machine.sending_ip.allocation_id,
            domain_name=fqdn,
            opts=pulumi.ResourceOptions(parent=host, depends_on=after),
        )

    def spool(self, host, name: str, machine: Machine) -> aws.ebs.Volume:
        volume = aws.ebs.Volume(
            f"{name}-spool",
            availability_zone=self.network.zones[Role.MTA],
            size=self.settings.aws.spool_volume_gb,
            type="gp3",
            encrypted=True,
            tags=tags(Role.MTA, f"{name}-spool"),
            # Queued mail lives here; it must outlive the instance and the stack.
            opts=pulumi.ResourceOptions(parent=host, protect=True, retain_on_delete=True),
        )
        aws.ec2.VolumeAttachment(
            f"{name}-spool-attach",
            device_name=SPOOL_DEVICE,
            volume_id=volume.id,
            instance_id=machine.instance_id,
            stop_instance_before_detaching=True,
            # Under the host, not the protected volume: a replaced instance needs a new attachment.
            opts=pulumi.ResourceOptions(parent=host),
        )
        return volume

    def _ami(self, arch: str) -> pulumi.Output[str]:
        """Latest Canonical Ubuntu 22.04 image; KumoMTA publishes no packages for 24.04."""
        if arch not in self._amis:
            self._amis[arch] = aws.ec2.get_ami_output(
                most_recent=True,
                owners=[CANONICAL],
                filters=[
                    {"name": "name", "values": [f"ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-{arch}-server-*"]},
                    {"name": "virtualization-type", "values": ["hvm"]},
                ],
                opts=pulumi.InvokeOptions(parent=self),
            ).id
        return self._amis[arch]


_EC2_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)


def _read_parameters(arn: str) -> str:
    """Read a role's own parameters; decrypting a secret among them is the key policy's to allow."""
    statement = {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": arn}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _role_path(role: Role) -> str:
    """The SSM path of a role's configuration and secrets: its bundles, and (MTA) the secrets only it decrypts."""
    return f"/kumomta/{pulumi.get_stack()}/{role.value}"


def _parameter_arn(partition: str, region: str, account: str, path: str) -> str:
    return f"arn:{partition}:ssm:{region}:{account}:parameter{path}"


def parameter_value(document: str) -> str:
    """The bundle as the parameter holds it: JSON, or gzipped and base64-encoded behind `gz:` (kumomta-sync)
    when it would not fit a standard parameter's 4 KB (SSM PutParameter API reference, Value)."""
    if len(document.encode()) <= 4096:
        return document
    return "gz:" + base64.b64encode(gzip.compress(document.encode(), mtime=0)).decode()


def _key_policy(region: str, stack: str, account: str, partition: str, deployers: list[str], mta_role: str) -> str:
    """The secrets key's policy: the account administers it, the deployers use it, and the MTA role
    may decrypt only through SSM and only parameters under its own path.

    SSM decrypts a SecureString with the encryption context `PARAMETER_ARN` = the parameter's ARN
    (AWS KMS developer guide, "How AWS Systems Manager Parameter Store uses AWS KMS").
    """
    root = f"arn:{partition}:iam::{account}:root"
    parameters = _parameter_arn(partition, region, account, f"/kumomta/{stack}/mta") + "/*"
    statements = [
        {"Sid": "AccountAdministersNotDecrypts", "Effect": "Allow", "Principal": {"AWS": root},
         "Action": _KEY_ADMIN_ACTIONS, "Resource": "*"},
        {"Sid": "DeployersWriteAndReadSecrets", "Effect": "Allow", "Principal": {"AWS": sorted(set(deployers))},
         "Action": _KEY_USER_ACTIONS, "Resource": "*"},
        {"Sid": "MtaHostsDecryptTheirParameters", "Effect": "Allow", "Principal": {"AWS": mta_role},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"ssm.{region}.amazonaws.com"},
                       "StringLike": {"kms:EncryptionContext:PARAMETER_ARN": parameters}}},
    ]  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _peer(rule: matrix.Rule, groups: dict[Role, aws.ec2.SecurityGroup]) -> dict:
    """The one source (or destination) argument of a rule resource."""
    if rule.group is not None:
        return {"referenced_security_group_id": groups[rule.group].id}
    key = "cidr_ipv4" if rule.cidr.version == 4 else "cidr_ipv6"
    return {key: str(rule.cidr)}


def ec2_description(text: str) -> str:
    """`text`, if EC2 takes it as a security group or rule description; a bug in this program otherwise."""
    if not EC2_DESCRIPTION.match(text):
        raise ValueError(f"EC2 would reject the description {text!r} (CreateSecurityGroup character set)")
    return text


def _architecture(instance_type: str) -> str:
    """Graviton families carry a `g` after the generation digit: t4g, m7gd, c6gn."""
    return "arm64" if re.match(r"^[a-z]+\d+[a-z]*g[a-z]*\.", instance_type) else "amd64"


def _ipv6_subnet(vpc_block: str, index: int) -> str:
    """The index-th /64 of the VPC's Amazon-provided /56."""
    return str(list(ipaddress.ip_network(vpc_block).subnets(new_prefix=64))[index])
