"""The cloud contracts: every value the program sends that AWS or Hetzner constrains, with its source.

One record per rule. A `Value` names the resource types, the property path in the registered
inputs (camelCase, as the engine receives them), the predicate, and the source with a short quote;
`accepts`/`rejects` are sample values from the source that pin the predicate itself. An `Across`
record reads several registrations at once (rules per group, a subnet inside its network).

Besides the clouds' APIs, the program sends values to two other parties that enforce something: the
DNS (a TXT record's character-strings, names' lengths) and the SSH client of pulumi-command's remote
Command, whose connection fields it parses; their sources are the RFCs and the provider's code.
"""

import base64
import fnmatch
import ipaddress
import json
import re
from collections import Counter, defaultdict

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.contracts import checks as c
from tests.contracts.checks import Across, Value
from tools.mockrun import ACCOUNT, DEPLOYER, Run

# Who runs `pulumi up` in the mock account (tools/mockrun.py): the caller a key policy must not lock out.
CALLER = f"arn:aws:iam::{ACCOUNT}:role/{DEPLOYER}"

# ---- resource types ---------------------------------------------------------------------------

SG = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ENI = "aws:ec2/networkInterface:NetworkInterface"
EIP = "aws:ec2/eip:Eip"
EIP_PTR = "aws:ec2/eipDomainName:EipDomainName"
INSTANCE = "aws:ec2/instance:Instance"
EBS = "aws:ebs/volume:Volume"
EBS_ATTACH = "aws:ec2/volumeAttachment:VolumeAttachment"
ROLE = "aws:iam/role:Role"
PROFILE = "aws:iam/instanceProfile:InstanceProfile"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_ATTACH = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
SSM = "aws:ssm/parameter:Parameter"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
RECORD = "aws:route53/record:Record"
COMMAND = "command:remote:Command"
TLS_KEY = "tls:index/privateKey:PrivateKey"

H_FIREWALL = "hcloud:index/firewall:Firewall"
H_NETWORK = "hcloud:index/network:Network"
H_SUBNET = "hcloud:index/networkSubnet:NetworkSubnet"
H_PRIMARY_IP = "hcloud:index/primaryIp:PrimaryIp"
H_RDNS = "hcloud:index/rdns:Rdns"
H_SERVER = "hcloud:index/server:Server"
H_VOLUME = "hcloud:index/volume:Volume"
H_ATTACH = "hcloud:index/volumeAttachment:VolumeAttachment"
H_ZONE = "hcloud:index/zone:Zone"
H_RRSET = "hcloud:index/zoneRrset:ZoneRrset"

RULES = (INGRESS, EGRESS)
EC2_TAGGED = (SG, DEFAULT_SG, INGRESS, EGRESS, VPC, SUBNET, ENI, EIP, INSTANCE, EBS)
AWS_TAGGED = (
    *EC2_TAGGED,
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/routeTable:RouteTable",
    ROLE,
    PROFILE,
    SSM,
    KMS_KEY,
)
H_LABELLED = (H_FIREWALL, H_NETWORK, H_PRIMARY_IP, H_SERVER, H_VOLUME, H_ZONE, H_RRSET)
TAGGED_VOLUMES = (INSTANCE,)  # root volumes tagged through rootBlockDevice.tags

# ---- sources ----------------------------------------------------------------------------------

EC2_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference"
IAM_API = "https://docs.aws.amazon.com/IAM/latest/APIReference"
VPC_QUOTAS = "https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html"
IAM_QUOTAS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"
HCLOUD = "https://docs.hetzner.cloud/reference/cloud"
HCLOUD_FIREWALL_FAQ = "https://docs.hetzner.com/cloud/firewalls/faq/"
SSM_PUT = "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html"
KMS_API = "https://docs.aws.amazon.com/kms/latest/APIReference"
R53_TYPES = "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/ResourceRecordTypes.html"
PULUMI_HCLOUD_RRSET = "https://www.pulumi.com/registry/packages/hcloud/api-docs/zonerrset/"
REMOTE_CONNECTION = "https://github.com/pulumi/pulumi-command/blob/master/provider/pkg/provider/remote/connection.go"

# Hetzner locations and their network zones, from Hetzner's own list (not the program's table).
HCLOUD_ZONES = {
    "fsn1": "eu-central",
    "nbg1": "eu-central",
    "hel1": "eu-central",
    "ash": "us-east",
    "hil": "us-west",
    "sin": "ap-southeast",
}


# ---- AWS: security groups ---------------------------------------------------------------------


def _family(rule_inputs: dict) -> tuple[int, ...]:
    """IPv4, IPv6 or both: a rule naming a group or prefix list counts once for each family."""
    if rule_inputs.get("cidrIpv4"):
        return (4,)
    if rule_inputs.get("cidrIpv6"):
        return (6,)
    return (4, 6)


def _rules_per_group(run: Run) -> list[str]:
    counts: Counter = Counter()
    for reg in c.of_types(run, *RULES):
        direction = "inbound" if reg.type == INGRESS else "outbound"
        for family in _family(reg.inputs):
            counts[(reg.inputs["securityGroupId"], direction, family)] += 1
    names = {gid: reg.name for gid, reg in c.by_id(run, SG, DEFAULT_SG).items()}
    groups = ((f"{names.get(g, g)} {d} IPv{f}", n) for (g, d, f), n in counts.items())
    return c.count_over(60, groups, "rules")


def _duplicate_rules(run: Run) -> list[str]:
    seen: Counter = Counter()
    for reg in c.of_types(run, *RULES):
        i = reg.inputs
        peer = i.get("cidrIpv4") or i.get("cidrIpv6") or i.get("referencedSecurityGroupId") or i.get("prefixListId")
        seen[(reg.type, i["securityGroupId"], i["ipProtocol"], i.get("fromPort"), i.get("toPort"), peer)] += 1
    return [
        f"{t.split(':')[-1]} {proto} {low}-{high} {peer} is declared {n} times"
        for (t, _, proto, low, high, peer), n in seen.items()
        if n > 1
    ]


def _one_peer(value: dict) -> bool:
    peers = [value.get(k) for k in ("cidrIpv4", "cidrIpv6", "referencedSecurityGroupId", "prefixListId")]
    return sum(p is not None for p in peers) == 1


def _rule_ports(value: dict) -> bool:
    """tcp and udp name a port range in 1-65535; `-1` (all traffic) names none."""
    protocol = str(value.get("ipProtocol", "")).lower()
    low, high = value.get("fromPort"), value.get("toPort")
    if protocol in ("tcp", "udp", "6", "17"):
        return c.whole(low, 1, 65535) and c.whole(high, 1, 65535) and low <= high
    return protocol in ("-1", "icmp", "icmpv6", "1", "58") or c.whole(float(protocol or "nan"), 0, 255)


SECURITY_GROUPS = [
    Value(
        "ec2.security-group.description",
        (SG,),
        "description",
        c.matches(c.EC2_TEXT, 255),
        "a-z A-Z 0-9 spaces and ._-:/()#,@[]+=&;{}!$*, at most 255",
        f"{EC2_API}/API_CreateSecurityGroup.html",
        "Description: Constraints: Up to 255 characters in length. "
        "Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*",
        accepts=("KumoMTA host: port matrix (guide, nothing more)",),
        rejects=("KumoMTA host: the guide's port matrix", "x" * 256, "naïve"),
    ),
    Across(
        "ec2.security-group.name",
        (SG,),
        "name",
        lambda run: [
            f"{reg.name}: name {c.physical_name(reg)!r}"
            for reg in c.of_types(run, SG)
            if not c.matches(c.EC2_TEXT, 255, 1)(c.physical_name(reg)) or c.physical_name(reg).startswith("sg-")
        ],
        "the group name (Pulumi auto-names it from the resource name): the description's characters, "
        "at most 255, not starting with sg-",
        f"{EC2_API}/API_CreateSecurityGroup.html",
        "GroupName: Constraints: Up to 255 characters in length. Cannot start with sg-. "
        "Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*",
    ),
    Value(
        "ec2.security-group-rule.description",
        RULES,
        "description",
        c.matches(c.EC2_TEXT, 255),
        "a-z A-Z 0-9 spaces and ._-:/()#,@[]+=&;{}!$*, at most 255",
        f"{EC2_API}/API_IpRange.html",
        "Description: Constraints: Up to 255 characters in length. "
        "Allowed characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*",
        accepts=("OS packages, KumoMTA repository, ACME and cloud agents.",),
        rejects=("Clock sync (NTP): the host's clock", "DNS → resolver"),
    ),
    Across(
        "ec2.security-group-rule.port-range",
        RULES,
        "fromPort, toPort, ipProtocol",
        lambda run: [
            f"{reg.name}: {reg.inputs.get('ipProtocol')} {reg.inputs.get('fromPort')}-{reg.inputs.get('toPort')}"
            for reg in c.of_types(run, *RULES)
            if not _rule_ports(reg.inputs)
        ],
        "tcp/udp rules name a port range within 1-65535, from <= to; other protocols are icmp, icmpv6, -1 or 0-255",
        f"{EC2_API}/API_AuthorizeSecurityGroupIngress.html",
        "IpProtocol: The IP protocol name (tcp, udp, icmp, icmpv6) or number... For tcp, udp, and icmp, "
        "you must specify a port range.",
    ),
    Across(
        "ec2.security-group-rule.one-peer",
        RULES,
        "cidrIpv4, cidrIpv6, referencedSecurityGroupId, securityGroupId",
        lambda run: [
            f"{reg.name}: not exactly one peer" for reg in c.of_types(run, *RULES) if not _one_peer(reg.inputs)
        ],
        "exactly one of an IPv4 range, an IPv6 range, a prefix list or a security group",
        f"{EC2_API}/API_AuthorizeSecurityGroupIngress.html",
        "You must specify exactly one of the following sources: an IPv4 or IPv6 address range, a prefix list, "
        "or a security group.",
    ),
    Value(
        "ec2.security-group-rule.cidr-ipv4",
        RULES,
        "cidrIpv4",
        c.cidr(4, 0, 32),
        "an IPv4 CIDR in canonical form (no host bits)",
        f"{EC2_API}/API_IpRange.html",
        "Amazon Web Services canonicalizes IPv4 and IPv6 CIDRs... if you attempt to add another rule with the "
        "non-canonical form of the CIDR... the API throws an duplicate rule error.",
        accepts=("0.0.0.0/0", "203.0.113.10/32"),
        rejects=("10.0.0.1/8", "2001:db8::/32", "203.0.113.10"),
    ),
    Value(
        "ec2.security-group-rule.cidr-ipv6",
        RULES,
        "cidrIpv6",
        c.cidr(6, 0, 128),
        "an IPv6 CIDR in canonical form (no host bits)",
        f"{EC2_API}/API_Ipv6Range.html",
        "CidrIpv6: The IPv6 address range. To specify a single IPv6 address, use the /128 prefix length.",
        accepts=("::/0", "2001:db8::1/128"),
        rejects=("2001:db8::1/64", "10.0.0.0/8"),
    ),
    Across(
        "ec2.security-group.rules-per-direction",
        RULES,
        "securityGroupId",
        _rules_per_group,
        "at most 60 inbound and 60 outbound rules per group, counted apart for IPv4 and IPv6; "
        "a rule that references a group counts once for each",
        VPC_QUOTAS,
        "Inbound or outbound rules per security group: 60... This quota is enforced separately for IPv4 rules "
        "and IPv6 rules... A rule that references a security group or AWS-managed prefix list ID counts as one "
        "rule for IPv4 and one rule for IPv6.",
    ),
    Across(
        "ec2.security-group.no-duplicate-rule",
        RULES,
        "ipProtocol",
        _duplicate_rules,
        "no rule twice in one group (same direction, protocol, ports and peer)",
        f"{EC2_API}/errors-overview.html",
        "InvalidPermission.Duplicate: The specified rule already exists for that security group.",
    ),
    Across(
        "ec2.network-interface.groups",
        (ENI,),
        "securityGroups",
        lambda run: c.count_over(
            5, ((reg.name, len(reg.inputs.get("securityGroups") or [])) for reg in c.of_types(run, ENI)), "groups"
        ),
        "at most 5 security groups per network interface",
        VPC_QUOTAS,
        "Security groups per network interface: 5",
    ),
]

# ---- AWS: tags ---------------------------------------------------------------------------------

TAGS = (
    [
        Value(
            f"aws.{prop}.key",
            AWS_TAGGED,
            f"{prop}.{{keys}}",
            c.aws_tag_key,
            "1 to 127 letters, digits, spaces and _.:/=+-@; never aws:",
            f"{EC2_API}/API_Tag.html",
            "Key: Constraints: Tag keys are case-sensitive and accept a maximum of 127 Unicode characters. "
            "May not begin with aws:. (IAM: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+)",
            accepts=("kumomta-role", "Name"),
            rejects=("aws:owner", "k" * 128, "team#1", ""),
        )
        for prop in ("tags", "volumeTags", "rootBlockDevice.tags")
    ]
    + [
        Value(
            f"aws.{prop}.value",
            AWS_TAGGED,
            f"{prop}.{{values}}",
            c.aws_tag_value,
            "at most 256 letters, digits, spaces and _.:/=+-@",
            f"{EC2_API}/API_Tag.html",
            "Value: Constraints: Tag values are case-sensitive and accept a maximum of 256 Unicode characters. "
            "(IAM: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)",
            accepts=("prod-mta-in-tcp-443-ping8-2001_db8__1-128", ""),
            rejects=("v" * 257, "a'b"),
        )
        for prop in ("tags", "volumeTags", "rootBlockDevice.tags")
    ]
    + [
        Value(
            f"aws.{prop}.count",
            AWS_TAGGED,
            prop,
            lambda tags: len(tags) <= 50,
            "at most 50 tags per resource",
            "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions",
            "Maximum number of tags per resource - 50",
            accepts=({"a": "b"},),
            rejects=({f"k{i}": "v" for i in range(51)},),
        )
        for prop in ("tags", "volumeTags", "rootBlockDevice.tags")
    ]
)

# ---- AWS: IAM ----------------------------------------------------------------------------------


def _inline_policy_size(run: Run) -> list[str]:
    per_role: Counter = Counter()
    for reg in c.of_types(run, ROLE_POLICY):
        per_role[reg.inputs["role"]] += c.without_whitespace(reg.inputs.get("policy") or "")
    return c.count_over(10240, per_role.items(), "characters of inline policy (without white space)")


def _named(types: tuple[str, ...], ok, what: str):
    return lambda run: [
        f"{reg.name}: {what} {c.physical_name(reg)!r}"
        for reg in c.of_types(run, *types)
        if not ok(c.physical_name(reg))
    ]


IAM = [
    Across(
        "iam.role.name",
        (ROLE,),
        "name",
        _named((ROLE,), c.matches(c.IAM_NAME, 64, 1), "role name"),
        "1 to 64 of [\\w+=,.@-] (Pulumi auto-names it from the resource name)",
        f"{IAM_API}/API_CreateRole.html",
        "RoleName: Length Constraints: Minimum length of 1. Maximum length of 64. Pattern: [\\w+=,.@-]+",
    ),
    Value(
        "iam.role.description",
        (ROLE,),
        "description",
        c.matches(c.IAM_DESCRIPTION, 1000),
        "at most 1000 printable Latin-1 characters",
        f"{IAM_API}/API_CreateRole.html",
        "Description: Maximum length of 1000. Pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*",
        accepts=("KumoMTA mta instances: SSM Session Manager and Run Command",),
        rejects=("d" * 1001, "emoji ✉"),
    ),
    Value(
        "iam.role.trust-policy",
        (ROLE,),
        "assumeRolePolicy",
        c.json_document(2048, c.without_whitespace),
        "a JSON document of at most 2048 characters (without white space)",
        IAM_QUOTAS,
        "Role trust policy length: 2,048 characters",
        accepts=('{"Version": "2012-10-17", "Statement": []}',),
        rejects=("not json", json.dumps({"Statement": ["x" * 2100]})),
    ),
    Across(
        "iam.instance-profile.name",
        (PROFILE,),
        "name",
        _named((PROFILE,), c.matches(c.IAM_NAME, 128, 1), "instance profile name"),
        "1 to 128 of [\\w+=,.@-]",
        f"{IAM_API}/API_CreateInstanceProfile.html",
        "InstanceProfileName: Length Constraints: Minimum length of 1. Maximum length of 128. Pattern: [\\w+=,.@-]+",
    ),
    Across(
        "iam.role-policy.name",
        (ROLE_POLICY,),
        "name",
        _named((ROLE_POLICY,), c.matches(c.IAM_NAME, 128, 1), "policy name"),
        "1 to 128 of [\\w+=,.@-]",
        f"{IAM_API}/API_PutRolePolicy.html",
        "PolicyName: Length Constraints: Minimum length of 1. Maximum length of 128. Pattern: [\\w+=,.@-]+",
    ),
    Value(
        "iam.role-policy.document",
        (ROLE_POLICY,),
        "policy",
        c.json_document(10240, c.without_whitespace),
        "a JSON document",
        f"{IAM_API}/API_PutRolePolicy.html",
        "PolicyDocument: The policy document. You must provide policies in JSON format in IAM.",
        rejects=("{",),
    ),
    Across(
        "iam.role.inline-policy-size",
        (ROLE_POLICY,),
        "policy, role",
        _inline_policy_size,
        "the inline policies of one role add up to at most 10,240 characters",
        IAM_QUOTAS,
        "Role policy size: You can add as many inline policies as you want to an IAM role, but the total "
        "aggregate policy size (the sum size of all inline policies) can't exceed 10,240 characters.",
    ),
    Across(
        "iam.role.managed-policies",
        (ROLE_ATTACH,),
        "role, policyArn",
        lambda run: c.count_over(
            10, Counter(reg.inputs["role"] for reg in c.of_types(run, ROLE_ATTACH)).items(), "managed policies"
        ),
        "at most 10 managed policies per role",
        IAM_QUOTAS,
        "Managed policies attached to an IAM role: 10",
    ),
    Value(
        "iam.role-policy-attachment.arn",
        (ROLE_ATTACH,),
        "policyArn",
        c.matches(r"arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+", 2048),
        "an IAM policy ARN",
        f"{IAM_API}/API_AttachRolePolicy.html",
        "PolicyArn: The Amazon Resource Name (ARN) of the IAM policy you want to attach.",
        accepts=("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",),
        rejects=("AmazonSSMManagedInstanceCore",),
    ),
]

# ---- AWS: SSM, KMS -----------------------------------------------------------------------------


def _ssm_name(name: str) -> bool:
    """Characters, no aws/ssm prefix, a leading / when hierarchical, at most 15 levels, ARN within 1011."""
    if not c.matches(r"[a-zA-Z0-9_.\-/]+", 2048, 1)(name):
        return False
    first = name.lstrip("/").split("/")[0].lower()
    if first.startswith(("aws", "ssm")) or ("/" in name and not name.startswith("/")):
        return False
    # arn:aws:ssm:<region>:<account>:parameter/<name>; the longest region names have 14 characters.
    arn = len("arn:aws:ssm:ap-southeast-4:123456789012:parameter") + len(name if name.startswith("/") else "/" + name)
    return name.count("/") <= 15 and arn <= 1011


def _ssm_value(run: Run) -> list[str]:
    """`value` (always secret in pulumi-aws) or its plain twin `insecureValue`: the same Value of PutParameter."""
    problems = []
    for reg in c.of_types(run, SSM):
        value = c.plain(reg.inputs.get("value", reg.inputs.get("insecureValue"))) or ""
        # Intelligent-Tiering takes an advanced parameter when the value needs one.
        limit = 8192 if reg.inputs.get("tier") in ("Advanced", "Intelligent-Tiering") else 4096
        if c.utf8_size(value) > limit:
            problems.append(f"{reg.name}: value of {c.utf8_size(value)} bytes, tier limit {limit}")
        if "{{" in value and "}}" in value:
            problems.append(f"{reg.name}: value contains {{{{...}}}}")
    return problems


def _key_policy(value) -> bool:
    """JSON of at most 32 KB in tab, LF, CR and the characters from space through U+00FF."""
    return c.json_document(32768, c.utf8_size)(value) and bool(re.fullmatch(r"[\t\n\r\x20-\xff]+", value))


def _may_put_key_policy(statement: dict, principals: set[str]) -> bool:
    """An Allow statement whose actions cover kms:PutKeyPolicy for one of `principals` (or every principal)."""
    actions = statement.get("Action", [])
    named = statement.get("Principal", {})
    named = named.get("AWS", []) if isinstance(named, dict) else named
    named = {named} if isinstance(named, str) else set(named)
    return (
        statement.get("Effect") == "Allow"
        and "Condition" not in statement
        and any(
            fnmatch.fnmatchcase("kms:PutKeyPolicy", a) for a in ([actions] if isinstance(actions, str) else actions)
        )
        and bool(named & (principals | {"*"}))
    )


def _key_policy_lockout(run: Run) -> list[str]:
    """The key policy lets the account (IAM then decides who) or the caller change the key policy again."""
    problems = []
    for reg in c.of_types(run, KMS_KEY):
        try:
            statements = json.loads(c.plain(reg.inputs.get("policy")) or "{}").get("Statement", [])
        except ValueError:
            continue  # kms.key.policy reports it
        statements = [statements] if isinstance(statements, dict) else statements
        roots = {f"arn:{p}:iam::{ACCOUNT}:root" for p in ("aws", "aws-cn", "aws-us-gov")} | {ACCOUNT}
        if not any(_may_put_key_policy(statement, roots | {CALLER}) for statement in statements):
            problems.append(f"{reg.name}: no statement lets the account or the caller call kms:PutKeyPolicy")
    return problems


def _rotation_symmetric(run: Run) -> list[str]:
    return [
        f"{reg.name}: enableKeyRotation with key spec {spec}"
        for reg in c.of_types(run, KMS_KEY)
        if reg.inputs.get("enableKeyRotation")
        and (spec := reg.inputs.get("customerMasterKeySpec") or reg.inputs.get("keySpec") or "SYMMETRIC_DEFAULT")
        != "SYMMETRIC_DEFAULT"
    ]


SSM_AND_KMS = [
    Value(
        "ssm.parameter.name",
        (SSM,),
        "name",
        _ssm_name,
        "a-zA-Z0-9_.- and /; no aws/ssm prefix; fully qualified when hierarchical; at most 15 levels; "
        "at most 1011 characters with the ARN",
        SSM_PUT,
        "A parameter name can't be prefixed with aws or ssm (case-insensitive). Parameter names can include only "
        "the following symbols and letters: a-zA-Z0-9_.- ... Parameter hierarchies are limited to a maximum depth "
        "of fifteen levels... The maximum length for a parameter name that you create is 1011 characters.",
        accepts=("/kumomta/prod/inject-token", "/kumomta/prod.eu_1/inject-token"),
        rejects=("/aws/x", "ssm-token", "kumomta/prod", "/a b", "/" + "/".join("l" * 16), "/" + "n" * 1000),
    ),
    Across(
        "ssm.parameter.value",
        (SSM,),
        "value, insecureValue, tier",
        _ssm_value,
        "at most 4 KB (standard tier) or 8 KB (advanced, or intelligent tiering); no {{...}} references",
        SSM_PUT,
        "Value: Standard parameters have a value limit of 4 KB. Advanced parameters have a value limit of 8 KB. "
        "Parameters can't be referenced or nested in the values of other parameters. You can't include {{}} ... "
        "Tier: ... If one or more options requiring an advanced parameter are included in the request, Parameter "
        "Store creates a parameter in the advanced-parameter tier (Intelligent-Tiering; a value of more than 4 KB "
        "is such an option).",
    ),
    Value(
        "ssm.parameter.tier",
        (SSM,),
        "tier",
        c.one_of("Standard", "Advanced", "Intelligent-Tiering"),
        "Standard, Advanced or Intelligent-Tiering",
        SSM_PUT,
        "Tier: Valid Values: Standard | Advanced | Intelligent-Tiering",
        rejects=("Intelligent", "standard"),
    ),
    Value(
        "ssm.parameter.key-id",
        (SSM,),
        "keyId",
        c.matches(r"[a-zA-Z0-9:/_-]+", 256, 1),
        "a KMS key ID, ARN or alias: 1 to 256 of letters, digits and :/_-",
        SSM_PUT,
        "KeyId: The Key Management Service (KMS) ID that you want to use to encrypt a parameter... Length "
        "Constraints: Minimum length of 1. Maximum length of 256. Pattern: ^([a-zA-Z0-9:/_-]+)$",
        accepts=("arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "alias/x"),
        rejects=("", "arn:aws:kms:eu-central-1:123456789012:key/a b", "k" * 257),
    ),
    Value(
        "ssm.parameter.description",
        (SSM,),
        "description",
        c.matches(r"(?s).*", 1024),
        "at most 1024 characters",
        SSM_PUT,
        "Description: Length Constraints: Minimum length of 0. Maximum length of 1024.",
        rejects=("d" * 1025,),
    ),
    Value(
        "ssm.parameter.type",
        (SSM,),
        "type",
        c.one_of("String", "StringList", "SecureString"),
        "String, StringList or SecureString",
        SSM_PUT,
        "Type: Valid Values: String | StringList | SecureString",
        rejects=("Secure",),
    ),
    Value(
        "kms.key.policy",
        (KMS_KEY,),
        "policy",
        _key_policy,
        "a JSON key policy of at most 32 KB, in printable Latin-1, tab, LF and CR",
        f"{KMS_API}/API_CreateKey.html",
        "Policy: The key policy to attach to the KMS key... The key policy size quota is 32 kilobytes "
        "(32768 bytes)... A key policy document can include only the following characters: Printable ASCII "
        "characters from the space character (\\u0020) through the end of the ASCII character range. Printable "
        "characters in the Basic Latin and Latin-1 Supplement character set (through \\u00FF). The tab (\\u0009), "
        "line feed (\\u000A), and carriage return (\\u000D) special characters. Length Constraints: Minimum length "
        "of 1. Maximum length of 32768. Pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        accepts=('{"Version": "2012-10-17", "Statement": []}',),
        rejects=(json.dumps({"Statement": ["x" * 32768]}), '{"Sid": "\u2713"}', ""),
    ),
    Across(
        "kms.key.policy-lockout",
        (KMS_KEY,),
        "policy",
        _key_policy_lockout,
        "the key policy lets the account or the caller call kms:PutKeyPolicy later, or KMS refuses it",
        f"{KMS_API}/API_CreateKey.html",
        "Policy: If you provide a key policy, it must meet the following criteria: The key policy must allow the "
        "calling principal to make a subsequent PutKeyPolicy request on the KMS key. This reduces the risk that "
        "the KMS key becomes unmanageable.",
    ),
    Value(
        "kms.key.deletion-window",
        (KMS_KEY,),
        "deletionWindowInDays",
        c.within(7, 30),
        "7 to 30 days",
        f"{KMS_API}/API_ScheduleKeyDeletion.html",
        "PendingWindowInDays: ... If you include a value, it must be between 7 and 30, inclusive.",
        rejects=(6, 31, 7.5),
    ),
    Across(
        "kms.key.rotation-symmetric",
        (KMS_KEY,),
        "enableKeyRotation, customerMasterKeySpec, keySpec",
        _rotation_symmetric,
        "automatic rotation only for symmetric encryption keys",
        f"{KMS_API}/API_EnableKeyRotation.html",
        "Automatic key rotation is supported only on symmetric encryption KMS keys. You cannot enable automatic "
        "rotation of asymmetric KMS keys, HMAC KMS keys, KMS keys with imported key material, or KMS keys in a "
        "custom key store.",
    ),
    Value(
        "kms.key.description",
        (KMS_KEY,),
        "description",
        c.matches(r"(?s).*", 8192),
        "at most 8192 characters",
        f"{KMS_API}/API_CreateKey.html",
        "Description: Length Constraints: Minimum length of 0. Maximum length of 8192.",
    ),
    Value(
        "kms.alias.name",
        (KMS_ALIAS,),
        "name",
        lambda name: c.matches(r"alias/[a-zA-Z0-9/_-]+", 256)(name) and not name.startswith("alias/aws/"),
        "alias/ then letters, digits, /_-; at most 256; never alias/aws/",
        f"{KMS_API}/API_CreateAlias.html",
        "AliasName: The alias name cannot begin with alias/aws/... Pattern: ^[a-zA-Z0-9:/_-]+$ ... "
        "must begin with alias/ followed by a name",
        accepts=("alias/kumomta/prod/inject-token", "alias/kumomta-prod_eu-secrets"),
        rejects=("kumomta", "alias/aws/ssm", "alias/a b", "alias/kumomta-prod.eu-secrets", "alias/" + "a" * 251),
    ),
]

# ---- AWS: network, compute, storage -----------------------------------------------------------

# The mock cloud places addresses as AWS does, so a subnet too small for its hosts stops the plan
# itself; the tests report that under this contract.
SUBNET_CAPACITY = "vpc.subnet.capacity"


def _subnets_in_vpc(run: Run) -> list[str]:
    vpcs = c.by_id(run, VPC)
    problems = []
    placed: dict[str, list] = defaultdict(list)
    for reg in c.of_types(run, SUBNET):
        vpc = vpcs.get(reg.inputs.get("vpcId"))
        if vpc is None:
            continue  # an existing VPC: only AWS knows its ranges
        subnet, block = c.network(reg.inputs.get("cidrBlock"), 4), c.network(vpc.inputs.get("cidrBlock"), 4)
        if subnet is None or block is None or not subnet.subnet_of(block):
            problems.append(f"{reg.name}: {reg.inputs.get('cidrBlock')} is not inside {vpc.name} {block}")
        v6, v6_block = reg.inputs.get("ipv6CidrBlock"), vpc.state.get("ipv6CidrBlock")
        if v6 is not None and not (
            c.network(v6, 6) and v6_block and c.network(v6, 6).subnet_of(ipaddress.ip_network(v6_block))
        ):
            problems.append(f"{reg.name}: IPv6 {v6} is not inside {vpc.name} {v6_block}")
        for other_name, other in placed[vpc.id]:
            if subnet is not None and other is not None and subnet.overlaps(other):
                problems.append(f"{reg.name}: {subnet} overlaps {other_name} {other}")
        placed[vpc.id].append((reg.name, subnet))
    return problems


def _subnet_capacity(run: Run) -> list[str]:
    subnets = c.by_id(run, SUBNET)
    placed = Counter(reg.inputs.get("subnetId") for reg in c.of_types(run, ENI))
    return [
        f"{subnets[sid].name}: {n} interfaces in {block}, which holds {block.num_addresses - 5}"
        for sid, n in placed.items()
        if sid in subnets
        and (block := c.network(subnets[sid].inputs.get("cidrBlock"), 4)) is not None
        and n > block.num_addresses - 5
    ]


def _same_zone_volumes(run: Run) -> list[str]:
    volumes, instances = c.by_id(run, EBS), c.by_id(run, INSTANCE)
    enis, subnets = c.by_id(run, ENI), c.by_id(run, SUBNET)
    problems = []
    for reg in c.of_types(run, EBS_ATTACH):
        volume, instance = volumes.get(reg.inputs.get("volumeId")), instances.get(reg.inputs.get("instanceId"))
        if volume is None or instance is None:
            continue
        eni = enis.get((instance.inputs.get("primaryNetworkInterface") or {}).get("networkInterfaceId"))
        subnet = subnets.get(eni.inputs.get("subnetId")) if eni is not None else None
        zone = subnet.state.get("availabilityZone") if subnet is not None else None
        if zone is not None and volume.inputs.get("availabilityZone") != zone:
            problems.append(f"{reg.name}: volume in {volume.inputs.get('availabilityZone')}, instance in {zone}")
    return problems


def _ptr_has_forward_record(run: Run) -> list[str]:
    eips = {reg.state.get("allocationId"): reg for reg in c.of_types(run, EIP)}
    forward = {}
    for reg in c.of_types(run, RECORD):
        if reg.inputs.get("type") == "A":
            forward[reg.inputs.get("name")] = (reg, reg.inputs.get("records") or [])
    for reg in c.of_types(run, H_RRSET):
        if reg.inputs.get("type") == "A":
            origin = reg.inputs.get("zone")
            fqdn = origin if reg.inputs.get("name") == "@" else f"{reg.inputs.get('name')}.{origin}"
            forward[fqdn] = (reg, [r.get("value") for r in reg.inputs.get("records") or []])
    problems = []
    for reg in c.of_types(run, EIP_PTR):
        eip = eips.get(reg.inputs.get("allocationId"))
        record, values = forward.get(reg.inputs.get("domainName"), (None, []))
        if eip is None or record is None or eip.state.get("publicIp") not in values:
            problems.append(f"{reg.name}: no A record {reg.inputs.get('domainName')} -> the Elastic IP in this stack")
        elif record.urn not in reg.depends_on:
            problems.append(f"{reg.name}: does not wait for its A record {record.name}")
    return problems


NETWORK_AND_COMPUTE = [
    Value(
        "vpc.cidr-block",
        (VPC,),
        "cidrBlock",
        c.cidr(4, 16, 28),
        "an IPv4 block between /16 and /28",
        "https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html",
        "The allowed block size is between a /16 netmask (65,536 IP addresses) and /28 netmask (16 IP addresses).",
        accepts=("10.42.0.0/16", "10.42.0.0/28"),
        rejects=("10.0.0.0/8", "10.42.0.0/29", "10.42.0.1/16"),
    ),
    Value(
        "vpc.subnet.cidr-block",
        (SUBNET,),
        "cidrBlock",
        c.cidr(4, 16, 28),
        "an IPv4 block between /16 and /28",
        "https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html",
        "The allowed block size for a subnet is between a /28 netmask and /16 netmask.",
        rejects=("10.42.1.0/29", "10.0.0.0/15"),
    ),
    Value(
        "vpc.subnet.ipv6-cidr-block",
        (SUBNET,),
        "ipv6CidrBlock",
        lambda value: c.cidr(6, 44, 64)(value) and c.network(value).prefixlen % 4 == 0,
        "an IPv6 block from /44 to /64 in steps of 4",
        "https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html",
        "The allowed block size for an IPv6 subnet is between /44 and /64 in increments of 4.",
        accepts=("2001:db8:0:1::/64",),
        rejects=("2001:db8::/40", "2001:db8::/62", "2001:db8::/65"),
    ),
    Across(
        "vpc.subnet.inside-vpc",
        (SUBNET, VPC),
        "vpcId, cidrBlock, ipv6CidrBlock",
        _subnets_in_vpc,
        "each subnet inside its VPC's blocks, and no two subnets overlapping",
        "https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html",
        "The CIDR block of a subnet can be the same as the CIDR block for the VPC... or a subset of the CIDR block "
        "for the VPC... The CIDR blocks of the subnets can't overlap.",
    ),
    Across(
        SUBNET_CAPACITY,
        (SUBNET, ENI),
        "subnetId",
        _subnet_capacity,
        "a subnet holds its interfaces: AWS keeps 5 addresses of every subnet",
        "https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html",
        "The first four IP addresses and the last IP address in each subnet CIDR block are not available for your "
        "use, and they cannot be assigned to a resource, such as an EC2 instance.",
    ),
    Value(
        "vpc.route.destination",
        (ROUTE,),
        "destinationCidrBlock",
        c.cidr(4),
        "an IPv4 CIDR",
        f"{EC2_API}/API_CreateRoute.html",
        "DestinationCidrBlock: The IPv4 CIDR address block used for the destination match.",
    ),
    Value(
        "vpc.route.destination-ipv6",
        (ROUTE,),
        "destinationIpv6CidrBlock",
        c.cidr(6),
        "an IPv6 CIDR",
        f"{EC2_API}/API_CreateRoute.html",
        "DestinationIpv6CidrBlock: The IPv6 CIDR block used for the destination match.",
    ),
    Value(
        "ec2.eip.domain",
        (EIP,),
        "domain",
        c.one_of("vpc", "standard"),
        "vpc (or standard)",
        f"{EC2_API}/API_AllocateAddress.html",
        "Domain: The network (vpc). Valid Values: vpc | standard",
        rejects=("VPC", "ec2"),
    ),
    Value(
        "ec2.eip-domain-name.hostname",
        (EIP_PTR,),
        "domainName",
        c.hostname,
        "a host name: labels of at most 63, 253 in all",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/elastic-ip-addresses-eip.html",
        "Before you create a reverse DNS record, you must set a corresponding forward DNS record (record type A) "
        "that points to your Elastic IP address.",
        rejects=("a" * 64 + ".example.com", "bad_name.example.com"),
    ),
    Across(
        "ec2.eip-domain-name.forward-record",
        (EIP_PTR,),
        "allocationId",
        _ptr_has_forward_record,
        "the PTR's name has an A record to that Elastic IP, and the PTR waits for it",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/elastic-ip-addresses-eip.html",
        "Before you create a reverse DNS record, you must set a corresponding forward DNS record (record type A) "
        "that points to your Elastic IP address.",
    ),
    Value(
        "ec2.instance.user-data",
        (INSTANCE,),
        "userDataBase64",
        lambda value: 0 <= c.base64_size(value) <= 16384,
        "at most 16 KB before base64",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html",
        "User data is limited to 16 KB, in raw form, before it is base64-encoded.",
        rejects=("not base64!", base64.b64encode(b"x" * 16385).decode()),
    ),
    Value(
        "ec2.instance.user-data-text",
        (INSTANCE,),
        "userData",
        lambda value: c.utf8_size(value) <= 16384,
        "at most 16 KB",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/user-data.html",
        "User data is limited to 16 KB, in raw form, before it is base64-encoded.",
    ),
    Value(
        "ec2.instance.metadata-hop-limit",
        (INSTANCE,),
        "metadataOptions.httpPutResponseHopLimit",
        c.within(1, 64),
        "1 to 64",
        f"{EC2_API}/API_InstanceMetadataOptionsRequest.html",
        "HttpPutResponseHopLimit: Possible values: Integers from 1 to 64",
        rejects=(0, 65, 1.5),
    ),
    Value(
        "ec2.instance.metadata-tokens",
        (INSTANCE,),
        "metadataOptions.httpTokens",
        c.one_of("optional", "required"),
        "optional or required",
        f"{EC2_API}/API_InstanceMetadataOptionsRequest.html",
        "HttpTokens: Valid Values: optional | required",
    ),
    Value(
        "ebs.volume.size",
        (EBS,),
        "size",
        c.within(1, 16384),
        "gp3: 1 to 16384 GiB",
        f"{EC2_API}/API_CreateVolume.html",
        "Size: The size of the volume, in GiBs... gp2 and gp3: 1 - 16,384 GiB",
        rejects=(0, 16385),
    ),
    Value(
        "ebs.volume.type",
        (EBS,),
        "type",
        c.one_of("standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"),
        "a volume type",
        f"{EC2_API}/API_CreateVolume.html",
        "VolumeType: Valid Values: standard | io1 | io2 | gp2 | sc1 | st1 | gp3",
    ),
    Value(
        "ec2.instance.root-volume-size",
        (INSTANCE,),
        "rootBlockDevice.volumeSize",
        c.within(1, 16384),
        "gp3: 1 to 16384 GiB",
        f"{EC2_API}/API_CreateVolume.html",
        "Size: gp2 and gp3: 1 - 16,384 GiB",
    ),
    Value(
        "ebs.attachment.device-name",
        (EBS_ATTACH,),
        "deviceName",
        c.matches(r"/dev/sd[f-p]", 16),
        "/dev/sd[f-p], the names recommended for EBS volumes",
        "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/device_naming.html",
        "Recommended for EBS volumes: /dev/sd[f-p]",
        rejects=("/dev/sda1", "/dev/xvdz"),
    ),
    Across(
        "ebs.attachment.same-zone",
        (EBS_ATTACH,),
        "volumeId, instanceId",
        _same_zone_volumes,
        "a volume attaches only to an instance in its Availability Zone",
        f"{EC2_API}/API_AttachVolume.html",
        "The volume and instance must be within the same Availability Zone.",
    ),
]

# ---- Route53 -----------------------------------------------------------------------------------


def _record_values(run: Run) -> list[str]:
    kinds = {"A": c.address(4), "AAAA": c.address(6)}
    return [
        f"{reg.name}: {reg.inputs.get('type')} {value!r}"
        for reg in c.of_types(run, RECORD)
        for value in reg.inputs.get("records") or []
        if reg.inputs.get("type") in kinds and not kinds[reg.inputs["type"]](value)
    ]


def _txt_records(run: Run) -> list[str]:
    """Each TXT value as Route53 gets it: the provider wraps the record in quotes, so `""` inside starts a string."""
    problems = []
    for reg in c.of_types(run, RECORD):
        if reg.inputs.get("type") not in ("TXT", "SPF"):
            continue
        for record in c.plain(reg.inputs.get("records")) or []:
            value = f'"{record}"'
            strings = c.character_strings(value, adjacent=True)
            if strings is None:
                problems.append(f"{reg.name}: {c.short(value)!r} is not quoted character-strings")
            elif long := [len(x) for x in strings if len(x) > 255]:
                problems.append(f"{reg.name}: strings of {long} characters, at most 255 each")
            elif not all(c.printable_ascii(x) for x in strings):
                problems.append(f"{reg.name}: {c.short(value)!r} holds characters that need \\ooo escapes")
            if len(value) > 4000:
                problems.append(f"{reg.name}: a value of {len(value)} characters, at most 4000")
    return problems


ROUTE53 = [
    Value(
        "route53.record.name",
        (RECORD,),
        "name",
        c.owner_name(253),
        "a domain name: labels of 1 to 63, 253 characters as text (255 bytes on the wire); _ needs no escape",
        "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DomainNameFormat.html",
        "Each label can be up to 63 bytes long. The total length of a domain name cannot exceed 255 bytes, "
        "including the dots... You can include any of the following characters without using escape codes: "
        "... - / : ; < = > ? @ [ \\ ] ^ _ ` { | } ~ . (RFC 1035 2.3.4: 255 octets on the wire, 253 as text.)",
        accepts=("mta.yourdomain.com", "_dmarc.yourdomain.com", "s202611._domainkey.yourdomain.com"),
        rejects=("x" * 64 + ".example.com", ".".join(["a" * 63] * 4) + ".com", "a..b.com", "a b.com"),
    ),
    Across(
        "route53.record.txt",
        (RECORD,),
        "records, type",
        _txt_records,
        "a TXT value is quoted strings of at most 255 characters, printable ASCII (spaces inside the quotes) or "
        "escaped, 4000 in all",
        R53_TYPES,
        "TXT record type: A TXT record contains one or more strings that are enclosed in double quotation marks "
        '("). ... If your TXT record contains any of the following characters, you must specify the characters '
        "by using escape codes in the format \\three-digit octal code: Characters 000 to 040 octal ... Characters "
        "177 to 377 octal. (ResourceRecord: Value: not to exceed 4,000 characters; RFC 1035 3.3: a "
        "<character-string> is at most 255 octets.)",
    ),
    Value(
        "route53.record.ttl",
        (RECORD,),
        "ttl",
        c.within(0, 2147483647),
        "0 to 2147483647 seconds",
        "https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html",
        "TTL: Valid Range: Minimum value of 0. Maximum value of 2147483647.",
        rejects=(-1, 2**31),
    ),
    Across(
        "route53.record.values",
        (RECORD,),
        "records, type",
        _record_values,
        "A records hold IPv4 addresses, AAAA records IPv6 addresses",
        R53_TYPES,
        "A record type: The value for an A record is an IPv4 address in dotted decimal notation. "
        "AAAA: The value for a AAAA record is an IPv6 address in colon-separated hexadecimal format.",
    ),
    Value(
        "route53.record.type",
        (RECORD,),
        "type",
        c.one_of(
            "A",
            "AAAA",
            "CAA",
            "CNAME",
            "DS",
            "HTTPS",
            "MX",
            "NAPTR",
            "NS",
            "PTR",
            "SOA",
            "SPF",
            "SRV",
            "SSHFP",
            "SVCB",
            "TLSA",
            "TXT",
        ),
        "a record type Route53 serves",
        "https://docs.aws.amazon.com/Route53/latest/APIReference/API_ResourceRecordSet.html",
        "Type: Valid Values: SOA | A | TXT | NS | CNAME | MX | NAPTR | PTR | SRV | SPF | AAAA | CAA | DS | TLSA | "
        "SSHFP | SVCB | HTTPS",
    ),
]

# ---- Hetzner -----------------------------------------------------------------------------------


def _rules_of(run: Run):
    for reg in c.of_types(run, H_FIREWALL):
        for index, rule in enumerate(c.plain(reg.inputs.get("rules")) or []):
            yield reg, index, rule


def _hcloud_rule_shape(run: Run) -> list[str]:
    problems = []
    for reg, index, rule in _rules_of(run):
        where = f"{reg.name}: rules[{index}]"
        direction, protocol, port = rule.get("direction"), rule.get("protocol"), rule.get("port")
        sources, destinations = rule.get("sourceIps") or [], rule.get("destinationIps") or []
        if direction not in ("in", "out") or protocol not in ("tcp", "udp", "icmp", "esp", "gre"):
            problems.append(f"{where}: direction {direction!r}, protocol {protocol!r}")
        if (direction == "in" and (not sources or destinations)) or (
            direction == "out" and (not destinations or sources)
        ):
            problems.append(f"{where}: {direction} rules name source_ips (in) or destination_ips (out), one of them")
        if protocol in ("tcp", "udp") and not c.port_text(port):
            problems.append(f"{where}: {protocol} port {port!r}")
        if protocol not in ("tcp", "udp") and port is not None:
            problems.append(f"{where}: {protocol} takes no port")
    return problems


def _effective_rules(run: Run) -> list[str]:
    totals: Counter = Counter()
    for reg, _, rule in _rules_of(run):
        totals[reg.name] += max(len(rule.get("sourceIps") or []), len(rule.get("destinationIps") or []), 1)
    return c.count_over(500, totals.items(), "effective rules (one per address of each rule)")


def _subnets_in_network(run: Run) -> list[str]:
    networks = c.by_id(run, H_NETWORK)
    problems, placed = [], defaultdict(list)
    for reg in c.of_types(run, H_SUBNET):
        parent = networks.get(str(int(reg.inputs.get("networkId") or 0)))
        subnet = c.network(reg.inputs.get("ipRange"), 4)
        block = c.network(parent.inputs.get("ipRange"), 4) if parent is not None else None
        if subnet is None or block is None or not subnet.subnet_of(block):
            problems.append(f"{reg.name}: {reg.inputs.get('ipRange')} is not inside its network {block}")
            continue
        for other_name, other in placed[parent.id]:
            if subnet.overlaps(other):
                problems.append(f"{reg.name}: {subnet} overlaps {other_name} {other}")
        placed[parent.id].append((reg.name, subnet))
    return problems


def _server_zones(run: Run) -> list[str]:
    subnets = c.by_id(run, H_SUBNET)
    problems = []
    for reg in c.of_types(run, H_SERVER):
        zone = HCLOUD_ZONES.get(reg.inputs.get("location"))
        for attachment in reg.inputs.get("networks") or []:
            subnet = subnets.get(attachment.get("subnetId"))
            if subnet is not None and subnet.inputs.get("networkZone") != zone:
                problems.append(
                    f"{reg.name}: in {reg.inputs.get('location')} ({zone}), subnet in {subnet.inputs.get('networkZone')}"
                )
    return problems


def _volume_with_server(run: Run) -> list[str]:
    volumes, servers = c.by_id(run, H_VOLUME), c.by_id(run, H_SERVER)
    problems = []
    for reg in c.of_types(run, H_ATTACH):
        volume = volumes.get(str(int(reg.inputs.get("volumeId") or 0)))
        server = servers.get(str(int(reg.inputs.get("serverId") or 0)))
        if volume is not None and server is not None and volume.inputs.get("location") != server.inputs.get("location"):
            problems.append(
                f"{reg.name}: volume in {volume.inputs.get('location')}, server in {server.inputs.get('location')}"
            )
    return problems


def _primary_ips_with_server(run: Run) -> list[str]:
    ips = c.by_id(run, H_PRIMARY_IP)
    problems = []
    for reg in c.of_types(run, H_SERVER):
        for public in reg.inputs.get("publicNets") or []:
            for family in ("ipv4", "ipv6"):
                ip = ips.get(str(int(public.get(family) or 0)))
                if ip is not None and ip.inputs.get("location") != reg.inputs.get("location"):
                    problems.append(
                        f"{reg.name}: {ip.name} in {ip.inputs.get('location')}, server in {reg.inputs.get('location')}"
                    )
    return problems


def _rdns_address(run: Run) -> list[str]:
    ips = c.by_id(run, H_PRIMARY_IP)
    problems = []
    for reg in c.of_types(run, H_RDNS):
        ip = ips.get(str(int(reg.inputs.get("primaryIpId") or 0)))
        if ip is None:
            continue
        own = ip.state.get("ipNetwork") or f"{ip.state.get('ipAddress')}/32"
        try:
            inside = ipaddress.ip_address(reg.inputs.get("ipAddress")) in ipaddress.ip_network(own)
        except ValueError:
            inside = False
        if not inside:
            problems.append(f"{reg.name}: {reg.inputs.get('ipAddress')} is not an address of {ip.name} ({own})")
    return problems


def _unique_names(*types: str):
    def check(run: Run) -> list[str]:
        problems = []
        for type_ in types:
            names = Counter(reg.inputs.get("name") for reg in c.of_types(run, type_))
            problems += [f"{type_.split(':')[-1]} name {n!r} is used {k} times" for n, k in names.items() if k > 1]
        return problems

    return check


def _rrset_name(value: str) -> bool:
    """`@`, or a relative owner name in lower case: underscores are fine (`_dmarc`, `s1._domainkey`), non-ASCII is
    not (Punycode instead)."""
    return value == "@" or (value == value.lower() and c.owner_name(253)(value))


def _rrset_values(run: Run) -> list[str]:
    problems = []
    for reg in c.of_types(run, H_RRSET):
        values = [record.get("value") for record in c.plain(reg.inputs.get("records")) or []]
        if not values or len(set(values)) != len(values):
            problems.append(f"{reg.name}: records {values!r} are empty or repeat a value")
        kind = reg.inputs.get("type")
        for value in values if kind in ("A", "AAAA") else []:
            if not c.address(4 if kind == "A" else 6)(value):
                problems.append(f"{reg.name}: {kind} {value!r}")
    return problems


def _rrset_txt(run: Run) -> list[str]:
    problems = []
    for reg in c.of_types(run, H_RRSET):
        if reg.inputs.get("type") != "TXT":
            continue
        for record in c.plain(reg.inputs.get("records")) or []:
            strings = c.character_strings(record.get("value"))
            if strings is None:
                problems.append(f"{reg.name}: {c.short(record.get('value'))!r} is not quoted strings")
            elif long := [len(x) for x in strings if len(x) > 255]:
                problems.append(f"{reg.name}: strings of {long} characters, at most 255 each")
    return problems


def _rrset_in_zone(run: Run) -> list[str]:
    problems = []
    for reg in c.of_types(run, H_RRSET):
        name, zone = str(reg.inputs.get("name")), str(reg.inputs.get("zone"))
        if name != "@" and (name == zone or name.endswith(f".{zone}")):
            problems.append(f"{reg.name}: name {name!r} ends with its zone {zone!r}")
        if len(f"{name}.{zone}") > 253:
            problems.append(f"{reg.name}: {name}.{zone} has {len(name) + 1 + len(zone)} characters, at most 253")
    return problems


HETZNER = [
    Value(
        "hcloud.labels.key",
        H_LABELLED,
        "labels.{keys}",
        c.hcloud_label_key,
        "[prefix/]name: name 1-63 of [a-zA-Z0-9] with -_. inside; never hetzner.cloud/",
        f"{HCLOUD}#labels",
        "The name segment is required and must be a string of 63 characters or less, beginning and ending with an "
        "alphanumeric character ([a-z0-9A-Z]) with dashes (-), underscores (_), dots (.), and alphanumerics between. "
        "The hetzner.cloud/ prefix is reserved and cannot be used.",
        accepts=("kumomta-role", "example.com/my", "just-a-key"),
        rejects=("-role", "r" * 64, "hetzner.cloud/x", "a b", "bad_prefix_/x"),
    ),
    Value(
        "hcloud.labels.value",
        H_LABELLED,
        "labels.{values}",
        c.hcloud_label_value,
        "empty, or 1-63 of [a-zA-Z0-9] with -_. inside",
        f"{HCLOUD}#labels",
        "Valid label values must be a string of 63 characters or less and must be empty or begin and end with an "
        "alphanumeric character ([a-z0-9A-Z]) with dashes (-), underscores (_), dots (.), and alphanumerics between.",
        accepts=("", "prod-hcloud", "a.b_c"),
        rejects=("v" * 64, "prod-", "_x", "a/b"),
    ),
    Value(
        "hcloud.server.name",
        (H_SERVER,),
        "name",
        c.hostname,
        "a valid host name (RFC 1123)",
        f"{HCLOUD}#servers-create-a-server",
        "name: Name of the Server to create (must be unique per Project and a valid hostname as per RFC 1123).",
        accepts=("mta.yourdomain.com",),
        rejects=("mta_1.example.com", "x" * 64 + ".example.com", "-a.example.com"),
    ),
    Value(
        "hcloud.server.user-data",
        (H_SERVER,),
        "userData",
        lambda value: c.utf8_size(value) <= 32 * 1024,
        "at most 32 KiB",
        f"{HCLOUD}#servers-create-a-server",
        "user_data: Cloud-Init user data to use during Server creation. This field is limited to 32KiB.",
        rejects=("x" * (32 * 1024 + 1),),
    ),
    Value(
        "hcloud.server.firewalls",
        (H_SERVER,),
        "firewallIds",
        lambda ids: len(ids) <= 5,
        "at most 5 firewalls per server",
        HCLOUD_FIREWALL_FAQ,
        "Assign up to 5 active Firewalls per server",
        rejects=([1, 2, 3, 4, 5, 6],),
    ),
    Across(
        "hcloud.server.network-zone",
        (H_SERVER, H_SUBNET),
        "location, networks, networkZone",
        _server_zones,
        "a server joins only subnets in its location's network zone",
        "https://docs.hetzner.com/cloud/general/locations/",
        "network_zone: Name of Network zone. The Location object contains the network_zone property each Location "
        "belongs to. (fsn1, nbg1, hel1: eu-central; ash: us-east; hil: us-west; sin: ap-southeast)",
    ),
    Value(
        "hcloud.volume.name",
        (H_VOLUME,),
        "name",
        c.matches(r"[a-zA-Z0-9]([a-zA-Z0-9._-]*[a-zA-Z0-9])?", 64, 1),
        "letters, digits, -_. starting and ending alphanumeric, at most 64",
        f"{HCLOUD}#volumes-create-a-volume",
        "A volume's name can consist of alphanumeric characters, dashes, underscores, and dots, but has to start and "
        "end with an alphanumeric character. The total length is limited to 64 characters.",
        accepts=("prod-hcloud-mta-spool",),
        rejects=("v" * 65, "-spool", "a b"),
    ),
    Value(
        "hcloud.volume.size",
        (H_VOLUME,),
        "size",
        c.within(10, 10240),
        "10 to 10240 GB",
        f"{HCLOUD}#volumes-create-a-volume",
        "The minimum Volume size is 10GB and the maximum size is 10TB (10240GB).",
        rejects=(9, 10241),
    ),
    Value(
        "hcloud.volume.format",
        (H_VOLUME,),
        "format",
        c.one_of("xfs", "ext4"),
        "xfs or ext4",
        f"{HCLOUD}#volumes-create-a-volume",
        "format: Format Volume after creation. One of: xfs, ext4",
    ),
    Across(
        "hcloud.volume.same-location",
        (H_ATTACH,),
        "volumeId, serverId",
        _volume_with_server,
        "a volume attaches only to a server in its location",
        f"{HCLOUD}#volumes-create-a-volume",
        "Note that a Volume can be attached to a Server only in the same Location as the Volume itself.",
    ),
    Value(
        "hcloud.firewall.name",
        (H_FIREWALL,),
        "name",
        c.matches(r"(?s).+", 128),
        "at most 128 characters",
        f"{HCLOUD}#firewalls-create-a-firewall",
        "name: Name of the Firewall. Limited to a maximum of 128 characters. Must be unique per Project.",
        rejects=("f" * 129,),
    ),
    Value(
        "hcloud.firewall.rule-count",
        (H_FIREWALL,),
        "rules",
        lambda rules: len(rules) <= 50,
        "at most 50 rules per firewall",
        f"{HCLOUD}#firewalls-create-a-firewall",
        "rules: Array of rules. Rules are limited to 50 entries per Firewall and 500 effective rules.",
        rejects=([{}] * 51,),
    ),
    Across(
        "hcloud.firewall.effective-rules",
        (H_FIREWALL,),
        "rules",
        _effective_rules,
        "at most 500 effective rules per firewall, a rule counting once per address",
        HCLOUD_FIREWALL_FAQ,
        "Have up to 500 (effective) rules per Firewall. (API: Rules are limited to 50 entries per Firewall and "
        "500 effective rules.)",
    ),
    Value(
        "hcloud.firewall.rule-addresses",
        (H_FIREWALL,),
        "rules[].sourceIps",
        lambda ips: len(ips) <= 100,
        "at most 100 CIDRs per rule",
        f"{HCLOUD}#firewalls-create-a-firewall",
        "source_ips: List of permitted IPv4/IPv6 addresses for incoming traffic... You can specify 100 CIDR blocks "
        "at most.",
        rejects=([f"10.0.0.{i}/32" for i in range(101)],),
    ),
    Value(
        "hcloud.firewall.rule-addresses-out",
        (H_FIREWALL,),
        "rules[].destinationIps",
        lambda ips: len(ips) <= 100,
        "at most 100 CIDRs per rule",
        f"{HCLOUD}#firewalls-create-a-firewall",
        "destination_ips: List of permitted IPv4/IPv6 addresses for outgoing traffic... You can specify 100 CIDR "
        "blocks at most.",
    ),
    Value(
        "hcloud.firewall.rule-cidr",
        (H_FIREWALL,),
        "rules[].sourceIps[]",
        c.cidr(),
        "CIDR notation: a network with empty host bits, or a single host",
        f"{HCLOUD}#firewalls-create-a-firewall",
        "IPs must be in CIDR block notation... The CIDR blocks may refer to networks (with empty host bits) or "
        "single hosts.",
        accepts=("10.0.1.0/24", "2001:db8:ff00:42::8329/128"),
        rejects=("10.0.1.1/24", "10.0.1.1", "::1/200"),
    ),
    Value(
        "hcloud.firewall.rule-cidr-out",
        (H_FIREWALL,),
        "rules[].destinationIps[]",
        c.cidr(),
        "CIDR notation: a network with empty host bits, or a single host",
        f"{HCLOUD}#firewalls-create-a-firewall",
        "IPs must be in CIDR block notation... The CIDR blocks may refer to networks (with empty host bits) or "
        "single hosts.",
    ),
    Value(
        "hcloud.firewall.rule-port-text",
        (H_FIREWALL,),
        "rules[].port",
        c.port_text,
        '"n" or "a-b" with ports in 1-65535',
        f"{HCLOUD}#firewalls-create-a-firewall",
        "port: Port or port range to which traffic will be allowed, only applicable for protocols TCP and UDP. "
        "A port range can be specified by separating two ports with a dash, e.g 1024-5000.",
        accepts=("80", "1024-5000", "65535"),
        rejects=("0", "65536", "5000-1024", "80,443", "any"),
    ),
    Across(
        "hcloud.firewall.rule-shape",
        (H_FIREWALL,),
        "rules",
        _hcloud_rule_shape,
        "in/out with source_ips/destination_ips; tcp, udp, icmp, esp or gre; a port only (and always) for tcp/udp",
        f"{HCLOUD}#firewalls-create-a-firewall",
        "direction: Use source_ips for direction in and destination_ips for direction out to specify IPs. "
        "protocol: Network protocol to apply the rule for (tcp, udp, icmp, esp, gre). port: only applicable for "
        "protocols TCP and UDP.",
    ),
    Value(
        "hcloud.network.ip-range",
        (H_NETWORK,),
        "ipRange",
        lambda value: c.rfc1918(value) and c.network(value).prefixlen <= 24,
        "an RFC 1918 range, /24 or larger",
        f"{HCLOUD}#networks-create-a-network",
        "ip_range: Must span all included subnets. Must be one of the private IPv4 ranges of RFC1918. "
        "Minimum network size is /24.",
        accepts=("10.43.0.0/16", "192.168.0.0/24"),
        rejects=("10.43.0.0/25", "100.64.0.0/16", "10.43.0.1/16"),
    ),
    Value(
        "hcloud.subnet.ip-range",
        (H_SUBNET,),
        "ipRange",
        c.cidr(4, 0, 30),
        "an IPv4 range, /30 or larger",
        f"{HCLOUD}#network-actions-add-a-subnet-to-a-network",
        "ip_range: Must be a subnet of the parent Networks ip_range. Must not overlap with any other subnets... "
        "Minimum network size is /30.",
        rejects=("10.43.1.0/31", "10.43.1.1/24"),
    ),
    Across(
        "hcloud.subnet.inside-network",
        (H_SUBNET, H_NETWORK),
        "networkId, ipRange",
        _subnets_in_network,
        "each subnet inside its network's range, and no two subnets overlapping",
        f"{HCLOUD}#network-actions-add-a-subnet-to-a-network",
        "ip_range: Must be a subnet of the parent Networks ip_range. Must not overlap with any other subnets or "
        "with any destinations in routes.",
    ),
    Value(
        "hcloud.subnet.network-zone",
        (H_SUBNET,),
        "networkZone",
        c.one_of(*sorted(set(HCLOUD_ZONES.values()))),
        "a Hetzner network zone",
        "https://docs.hetzner.com/cloud/general/locations/",
        "Network zones: eu-central, us-east, us-west, ap-southeast",
    ),
    Value(
        "hcloud.primary-ip.type",
        (H_PRIMARY_IP,),
        "type",
        c.one_of("ipv4", "ipv6"),
        "ipv4 or ipv6",
        f"{HCLOUD}#primary-ips-create-a-primary-ip",
        "type: Primary IP type. Allowed: ipv4, ipv6",
    ),
    Across(
        "hcloud.primary-ip.same-location",
        (H_SERVER, H_PRIMARY_IP),
        "publicNets, location",
        _primary_ips_with_server,
        "a server's primary IPs are in its location",
        f"{HCLOUD}#primary-ips-create-a-primary-ip",
        "A Primary IP can only be assigned to resource in the same Location later on.",
    ),
    Value(
        "hcloud.rdns.ptr",
        (H_RDNS,),
        "dnsPtr",
        c.hostname,
        "a host name: labels of at most 63, 253 in all",
        f"{HCLOUD}#primary-ip-actions-change-reverse-dns-records-for-a-primary-ip",
        "dns_ptr: Hostname to set as a reverse DNS PTR entry.",
        rejects=("a" * 64 + ".example.com",),
    ),
    Across(
        "hcloud.rdns.address",
        (H_RDNS, H_PRIMARY_IP),
        "ipAddress, primaryIpId",
        _rdns_address,
        "the PTR's address belongs to its primary IP",
        f"{HCLOUD}#primary-ip-actions-change-reverse-dns-records-for-a-primary-ip",
        "ip: IP address for which to set the reverse DNS entry (of the Primary IP).",
    ),
    Across(
        "hcloud.names.unique",
        (H_SERVER, H_VOLUME, H_FIREWALL, H_NETWORK, H_PRIMARY_IP),
        "name",
        _unique_names(H_SERVER, H_VOLUME, H_FIREWALL, H_NETWORK, H_PRIMARY_IP),
        "names are unique per project and resource type",
        f"{HCLOUD}#servers-create-a-server",
        "Name of the Server to create (must be unique per Project ...). Volume names must be unique per Project. "
        "(Firewall) Must be unique per Project.",
    ),
    Value(
        "hcloud.zone.name",
        (H_ZONE,),
        "name",
        lambda value: c.hostname(value) and value == value.lower() and "." in value,
        "a lower-case domain name",
        f"{HCLOUD}#zones-create-a-zone",
        "name: Name of the Zone. All names with well-known public suffixes (e.g. .de, .com, .co.uk) are supported. "
        "Subdomains are not supported. The name must be in lower case, and must not end with a dot.",
    ),
    Value(
        "hcloud.rrset.name",
        (H_RRSET,),
        "name",
        _rrset_name,
        "lower case, relative to the zone, not ending with a dot; @ for the apex",
        f"{HCLOUD}#zone-rrsets-create-an-rrset",
        "name: Name of the RRSet. The name must be in lower case, and must not end with a dot or the Zone name. "
        "Names containing non-ASCII characters must be transcribed to Punycode representation with ACE prefix, "
        "e.g. xn--4bi. For the Zone apex, use @. (No other character rule: owner names are DNS names, not host "
        "names; RFC 2181 section 11 allows any label octets, RFC 8552 reserves the _ prefix for such names.)",
        accepts=("@", "mta", "mx1.eu", "_dmarc", "s202611._domainkey", "s1-ed25519._domainkey.mail", "xn--4bi"),
        rejects=("MTA", "mta.", "a" * 64, "a..b", "", "✉", "_DMARC"),
    ),
    Across(
        "hcloud.rrset.relative",
        (H_RRSET,),
        "name, zone",
        _rrset_in_zone,
        "names do not end with the zone name, and the full name stays within 253 characters",
        f"{HCLOUD}#zone-rrsets-create-an-rrset",
        "name: The name must be in lower case, and must not end with a dot or the Zone name. "
        "(RFC 1035, 2.3.4: names 255 octets or less, 253 characters as text.)",
    ),
    Value(
        "hcloud.rrset.ttl",
        (H_RRSET,),
        "ttl",
        c.within(60, 2147483647),
        "60 to 2147483647 seconds",
        f"{HCLOUD}#zone-rrsets-create-an-rrset",
        "ttl: Time To Live (TTL) of the RRSet. Must be in between 60s and 2147483647s.",
        rejects=(59, 2**31),
    ),
    Across(
        "hcloud.rrset.values",
        (H_RRSET,),
        "records, type",
        _rrset_values,
        "records never empty nor repeated; A records hold IPv4 addresses, AAAA records IPv6 addresses",
        f"{HCLOUD}#zone-rrsets-create-an-rrset",
        "records: Records of the RRSet. Must not be empty and must only contain distinct record values.",
    ),
    Across(
        "hcloud.rrset.txt",
        (H_RRSET,),
        "records, type",
        _rrset_txt,
        'a TXT value is one or more quoted strings ("...", \\" inside) of at most 255 characters each',
        PULUMI_HCLOUD_RRSET,
        "RRSets of type TXT: The format of TXT records must consist of one or many quoted strings of 255 "
        'characters. (hcloud-go zoneutil.FormatTXTRecord, its tests: hello "world" is written '
        '"hello \\"world\\"", and a longer value as "<255 characters>" "<the rest>".)',
    ),
    Value(
        "hcloud.rrset.type",
        (H_RRSET,),
        "type",
        c.one_of(
            *[
                "A",
                "AAAA",
                "CAA",
                "CNAME",
                "DS",
                "HINFO",
                "HTTPS",
                "MX",
                "NS",
                "PTR",
                "RP",
                "SOA",
                "SRV",
                "SVCB",
                "TLSA",
                "TXT",
            ]
        ),
        "a type Hetzner DNS serves",
        f"{HCLOUD}#zone-rrsets-create-an-rrset",
        "type: Allowed: A AAAA CAA CNAME DS HINFO HTTPS MX NS PTR RP SOA SRV SVCB TLSA TXT",
        rejects=("SPF", "txt"),
    ),
]


def _pinned_addresses(run: Run) -> list[str]:
    """Each pinned private address is a host address of its subnet, past the gateway, and no one else's."""
    subnets = c.by_id(run, H_SUBNET)
    problems, seen = [], {}
    for reg in c.of_types(run, H_SERVER):
        for attachment in c.plain(reg.inputs.get("networks")) or []:
            ip, subnet = attachment.get("ip"), subnets.get(attachment.get("subnetId"))
            if ip is None or subnet is None:
                continue
            block = c.network(subnet.inputs.get("ipRange"), 4)
            gateway = block.network_address + 1 if block else None
            if not (block and c.address(4)(ip) and gateway < ipaddress.ip_address(ip) < block.broadcast_address):
                problems.append(f"{reg.name}: {ip} is not a host address of {subnet.name} {block} past its gateway")
            where = (subnet.inputs.get("networkId"), ip)
            if where in seen:
                problems.append(f"{reg.name}: {ip} is also {seen[where]}'s address")
            seen[where] = reg.name
    return problems


HETZNER.append(
    Across(
        "hcloud.server.private-ip",
        (H_SERVER, H_SUBNET),
        "networks",
        _pinned_addresses,
        "a pinned private address lies in the server's subnet, is not its network, gateway or broadcast address, "
        "and is nobody else's",
        f"{HCLOUD}#server-actions-attach-a-server-to-a-network",
        "ip: IP to request to be assigned to this Server; if you do not provide this then you will be auto "
        "assigned an IP address. (Error ip_not_available: The provided Network IP is not available. "
        "https://docs.hetzner.com/networking/networks/technical-concepts/architecture: the subnet's first "
        "address, 10.0.0.1 of 10.0.0.0/24, is its Subnet Gateway.)",
    )
)

# ---- what pulumi-command and pulumi-tls take ---------------------------------------------------


def _authorized_key(value) -> bool:
    """One key in authorized_keys format, as golang.org/x/crypto/ssh.ParseAuthorizedKey reads it."""
    try:
        serialization.load_ssh_public_key(value.encode())
    except (AttributeError, ValueError, UnsupportedAlgorithm):
        return False
    return True


def _ssh_private_key(value) -> bool:
    """An unencrypted private key ssh.ParsePrivateKey reads: OpenSSH's own format or PEM."""
    for load in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            load(value.encode(), None)
        except (AttributeError, TypeError, ValueError, UnsupportedAlgorithm):
            continue
        return True
    return False


_ED25519 = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32))
_SAMPLE_PUBLIC = _ED25519.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
_SAMPLE_PRIVATE = _ED25519.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
)

COMMANDS_AND_KEYS = [
    Value(
        "command.connection.host",
        (COMMAND,),
        "connection.host",
        lambda value: c.address(4)(value) or c.address(6)(value) or c.hostname(value),
        "an IP address or a host name to dial",
        REMOTE_CONNECTION,
        'Host: "The address of the resource to connect to." Dial: net.JoinHostPort(*con.Host, ...)',
        accepts=("198.51.100.7", "2001:db8::1", "mta.yourdomain.com"),
        rejects=("", "198.51.100.7:22", "mta yourdomain"),
    ),
    Value(
        "command.connection.port",
        (COMMAND,),
        "connection.port",
        c.within(1, 65535),
        "a TCP port",
        REMOTE_CONNECTION,
        'Port: "The port to connect to. Defaults to 22." (RFC 793: a 16-bit port number; 0 is reserved.)',
        rejects=(0, 65536),
    ),
    Value(
        "command.connection.user",
        (COMMAND,),
        "connection.user",
        c.matches(r"[a-z_][a-z0-9_-]*\$?", 32, 1),
        "a user name the host's useradd would make: lower case, digits, _ and -, at most 32",
        "https://man7.org/linux/man-pages/man8/useradd.8.html",
        "Usernames may contain only lower and upper case letters, digits, underscores, or dashes. They can end "
        "with a dollar sign... Usernames may only be up to 32 characters long. (Debian's default NAME_REGEX is "
        "^[a-z][-a-z0-9_]*\\$?$.)",
        accepts=("kumomta-sync", "root"),
        rejects=("Kumo Sync", "u" * 33, "-x"),
    ),
    Value(
        "command.connection.host-key",
        (COMMAND,),
        "connection.hostKey",
        _authorized_key,
        "one public key in authorized_keys format",
        REMOTE_CONNECTION,
        "publicKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*con.HostKey)); if err != nil { return nil, "
        'fmt.Errorf("failed to parse host key: %w", err) }',
        accepts=(_SAMPLE_PUBLIC.decode(), _SAMPLE_PUBLIC.decode() + " root@mta\n"),
        rejects=("", "AAAAC3NzaC1lZDI1NTE5", "ssh-ed25519 not-base64"),
    ),
    Value(
        "command.connection.private-key",
        (COMMAND,),
        "connection.privateKey",
        _ssh_private_key,
        "an unencrypted private key in OpenSSH or PEM format",
        REMOTE_CONNECTION,
        "signer, err = ssh.ParsePrivateKey([]byte(*con.PrivateKey)) (no privateKeyPassword given)",
        accepts=(_SAMPLE_PRIVATE.decode(),),
        rejects=("", _SAMPLE_PUBLIC.decode()),
    ),
    Value(
        "command.connection.dial-error-limit",
        (COMMAND,),
        "connection.dialErrorLimit",
        lambda value: c.whole(value, -1, 2**31 - 1),
        "a whole number of failed dials, -1 for no limit",
        REMOTE_CONNECTION,
        'DialErrorLimit *int: "Max allowed errors on trying to dial the remote host. -1 set count to unlimited."',
        rejects=(-2, 1.5),
    ),
    Value(
        "command.connection.per-dial-timeout",
        (COMMAND,),
        "connection.perDialTimeout",
        lambda value: c.whole(value, 0, 2**31 - 1),
        "whole seconds per dial, 0 for no maximum",
        REMOTE_CONNECTION,
        'PerDialTimeout *int: "Max number of seconds for each dial attempt. 0 implies no maximum."',
        rejects=(-1, 0.5),
    ),
    Value(
        "tls.private-key.algorithm",
        (TLS_KEY,),
        "algorithm",
        c.one_of("RSA", "ECDSA", "ED25519"),
        "RSA, ECDSA or ED25519",
        "https://www.pulumi.com/registry/packages/tls/api-docs/privatekey/",
        "algorithm: Name of the algorithm to use when generating the private key. Currently-supported values "
        "are: RSA, ECDSA, ED25519.",
        rejects=("rsa", "DSA"),
    ),
    Value(
        "tls.private-key.rsa-bits",
        (TLS_KEY,),
        "rsaBits",
        c.within(1024, 4096),
        "1024 to 4096 bits: the RSA keys are DKIM keys, and receivers need only verify up to 4096",
        "https://www.rfc-editor.org/rfc/rfc8301#section-3.2",
        "Signers MUST use RSA keys of at least 1024 bits for all keys. Signers SHOULD use RSA keys of at least "
        "2048 bits. Verifiers MUST be able to validate signatures with keys ranging from 1024 bits to 4096 bits, "
        "and they MAY be able to validate signatures with larger keys.",
        rejects=(512, 8192),
    ),
]

CONTRACTS = [
    *SECURITY_GROUPS,
    *TAGS,
    *IAM,
    *SSM_AND_KMS,
    *NETWORK_AND_COMPUTE,
    *ROUTE53,
    *HETZNER,
    *COMMANDS_AND_KEYS,
]

# Registered properties that no contract reads, and why. A new property must land here or in a contract.
UNCONSTRAINED = {
    "*": {
        "vpcId": "a reference the cloud computed",
        "subnetId": "a reference the cloud computed",
        "securityGroupId": "a reference the cloud computed",
        "referencedSecurityGroupId": "a reference the cloud computed",
        "routeTableId": "a reference the cloud computed",
        "gatewayId": "a reference the cloud computed",
        "allocationId": "a reference the cloud computed",
        "networkInterfaceId": "a reference the cloud computed",
        "instanceId": "a reference the cloud computed",
        "volumeId": "a reference the cloud computed",
        "serverId": "a reference the cloud computed",
        "networkId": "a reference the cloud computed",
        "primaryIpId": "a reference the cloud computed",
        "role": "a reference to a role this stack created",
        "zoneId": "the operator's hosted zone ID, passed through",
        "zone": "the zone name, checked as hcloud.zone.name or by the lookup",
        "encrypted": "a boolean",
        "deleteProtection": "a boolean",
        "enableDnsSupport": "a boolean",
        "enableDnsHostnames": "a boolean",
        "mapPublicIpOnLaunch": "a boolean",
        "assignGeneratedIpv6CidrBlock": "a boolean",
        "stopInstanceBeforeDetaching": "a boolean",
        "automount": "a boolean",
        "autoDelete": "a boolean",
        "backups": "a boolean",
        "rebuildProtection": "a boolean",
        "shutdownBeforeDeletion": "a boolean",
        "availabilityZone": "the cloud's own zone name (or the operator's), cross-checked by ebs.attachment.same-zone",
        "location": "a location from settings' closed list, cross-checked by the same-location contracts",
    },
    ENI: {"description": "EC2 documents no constraint on interface descriptions", "ipv6AddressCount": "0 or 1"},
    INSTANCE: {
        "ami": "an image ID AWS returned or the operator pinned",
        "instanceType": "the operator's choice; AWS validates it at create",
        "iamInstanceProfile": "a reference to a profile this stack created",
        "primaryNetworkInterface": "a reference the cloud computed",
    },
    H_SERVER: {
        "image": "an image name Hetzner resolves",
        "serverType": "the operator's choice; Hetzner validates it at create",
        "sshKeys": "names or IDs of the operator's keys",
    },
    H_PRIMARY_IP: {"assigneeType": "always server", "name": "no documented constraint beyond hcloud.names.unique"},
    H_NETWORK: {"name": "no documented constraint beyond hcloud.names.unique"},
    H_SUBNET: {"type": "cloud, the only type for servers"},
    H_ZONE: {"mode": "primary"},
    "random:index/randomPassword:RandomPassword": {"length": "local to Pulumi", "special": "local to Pulumi"},
    KMS_ALIAS: {"targetKeyId": "a reference to the key this stack created"},
    RECORD: {"allowOverwrite": "read by the provider alone: false makes it CREATE, never UPSERT, a record set"},
    COMMAND: {
        "create": "a command line the host never runs: the deploy key's forced command runs kumomta-apply whatever "
        "is asked (tests/bootstrap/test_userdata.py)",
        "update": "as create",
        "stdin": "the bundle, streamed to the command's standard input; neither the provider nor sshd limits it",
        "triggers": "local to Pulumi: a change runs the command again",
    },
}
