"""Every way of writing an ingress rule, turned into one small model before any policy looks at it.

An `Opening` is one rule admitting one source: a protocol, a port range and where the traffic may
come from. AWS inline `ingress`, `SecurityGroupRule`, `SecurityGroupIngressRule`, the aws-native
`ec2:SecurityGroup` (`securityGroupIngress`) and `ec2:SecurityGroupIngress`, and Hetzner firewall
rules all become lists of Openings, so the policies never read provider properties. (Load
balancers become Openings too, in `balancers`, once the stack shows their scheme and targets.)

Reading fails closed: a protocol or port that is missing, unreadable or unknown during preview
reads as "every protocol" or "every port", so nothing public slips through because one field was
odd. Only a source that is unknown stays unjudged (`known` is False), and it is reported.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

from . import cidr


class _Unknown:
    """A value the engine does not know yet (preview)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = _Unknown()
_SENTINELS = {
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
}

ALL = "all"
UNKNOWN_RULE = "<unknown>"  # the protocol of a rule preview knows nothing of: it admits nothing judged
TCP = "tcp"
UDP = "udp"
ANY_PORT = (0, 65535)

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
FIREWALL = "hcloud:index/firewall:Firewall"
# aws-native (Cloud Control): https://www.pulumi.com/registry/packages/aws-native/api-docs/ec2/securitygroup/
NATIVE_SECURITY_GROUP = "aws-native:ec2:SecurityGroup"
NATIVE_INGRESS = "aws-native:ec2:SecurityGroupIngress"

_PROTOCOL_NUMBERS = {1: "icmp", 6: TCP, 17: UDP, 58: "icmpv6"}
_PROTOCOL_NAMES = {TCP, UDP, "icmp", "icmpv6", "gre", "esp"}


@dataclass(frozen=True)
class Source:
    """Where traffic may come from, as the rule wrote it."""

    kind: str  # "cidr", "security-group", "prefix-list", or "rule" when the whole rule is unknown
    text: str  # e.g. "0.0.0.0/0", "sg-0abc", "self", "<unknown>"
    field: str  # e.g. "cidrBlocks[1]"
    network: cidr.Network | None = None
    known: bool = True
    via: str = ""  # the prefix list this CIDR is an entry of, once the stack shows it

    @property
    def is_public(self) -> bool:
        """A known CIDR that reaches the internet; an unreadable CIDR counts as public (fail closed)."""
        return self.kind == "cidr" and self.known and (self.network is None or cidr.is_public(self.network))

    @property
    def is_private(self) -> bool:
        return self.kind == "cidr" and self.network is not None and cidr.is_private(self.network)


@dataclass(frozen=True)
class Opening:
    """One rule of one resource admitting one source."""

    urn: str
    name: str
    type: str
    rule: str  # "ingress[1]", "rules[0]", or "rule" for resources that are a single rule
    index: int
    protocol: str  # "tcp", "udp", "icmp", "icmpv6", "gre", "esp", a protocol number, or ALL
    ports: tuple[int, int]
    source: Source
    description: str | None
    unknown: tuple[str, ...] = ()  # fields read as "everything" because preview did not know them

    def admits(self, port: int, protocol: str = TCP) -> bool:
        return self.protocol in (protocol, ALL) and self.ports[0] <= port <= self.ports[1]

    def port_text(self) -> str:
        if self.protocol == UNKNOWN_RULE:
            return "an unknown rule"
        lo, hi = self.ports
        ports = "every port" if self.ports == ANY_PORT else str(lo) if lo == hi else f"{lo}-{hi}"
        return f"{'every protocol' if self.protocol == ALL else self.protocol} {ports}"


def plain(value: Any) -> Any:
    """Copy policy props into plain data, marking preview unknowns with UNKNOWN instead of raising."""
    if isinstance(value, Mapping):
        return {key: _item(value, key) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_item(value, i) for i in range(len(value))]
    return UNKNOWN if isinstance(value, str) and value in _SENTINELS else value


def _item(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def openings(resource_type: str, props: Mapping[str, Any], urn: str = "", name: str = "") -> list[Opening]:
    """The ingress openings of a resource (plain props, see `plain`); [] for other resources."""
    reader = _READERS.get(resource_type)
    if reader is None:
        return []
    out = []
    for rule, index, fields, unknown in reader(props):
        out += _expand(resource_type, urn, name, rule, index, fields, list(unknown))
    return out


def _security_group(props):
    yield from _entries(props, "ingress")


def _security_group_rule(props):
    kind = props.get("type")
    if kind is UNKNOWN:
        yield "rule", 0, props, ("type",)
    elif str(kind).lower() != "egress":
        yield "rule", 0, props, ()


def _ingress_rule(props):
    yield "rule", 0, props, ()


def _firewall(props):
    for rule, index, fields, unknown in _entries(props, "rules"):
        direction = fields.get("direction") if isinstance(fields, Mapping) else None
        if direction is UNKNOWN:
            yield rule, index, fields, (*unknown, "direction")
        elif str(direction).lower() != "out":
            yield rule, index, fields, unknown


def _entries(props, key):
    """Each entry of a rule list; an unknown list or entry is one rule of unknowns."""
    entries = props.get(key)
    if entries is UNKNOWN:
        yield key, 0, UNKNOWN, ()
        return
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        return
    for index, entry in enumerate(entries):
        rule = f"{key}[{index}]"
        yield rule, index, entry, ()


def _native_security_group(props):
    yield from _entries(props, "securityGroupIngress")


_READERS = {
    SECURITY_GROUP: _security_group,
    DEFAULT_SECURITY_GROUP: _security_group,
    SECURITY_GROUP_RULE: _security_group_rule,
    INGRESS_RULE: _ingress_rule,
    FIREWALL: _firewall,
    NATIVE_SECURITY_GROUP: _native_security_group,
    NATIVE_INGRESS: _ingress_rule,
}
RULE_TYPES = tuple(_READERS)  # every resource type whose ingress the resource policies judge alone


def _expand(resource_type, urn, name, rule, index, fields, unknown: list[str]) -> list[Opening]:
    if fields is UNKNOWN:
        unknown_source = Source("rule", "<unknown>", "the whole rule", known=False)
        return [Opening(urn, name, resource_type, rule, index, UNKNOWN_RULE, ANY_PORT, unknown_source, None)]
    if not isinstance(fields, Mapping):
        return []
    if resource_type == FIREWALL:
        protocol = _protocol(fields, "protocol", unknown)
        ports = _hcloud_ports(fields, protocol, unknown)
        sources = _sources(fields, {"sourceIps": "cidr"})
    elif resource_type == INGRESS_RULE:
        protocol = _protocol(fields, "ipProtocol", unknown)
        ports = _aws_ports(fields, protocol, unknown)
        sources = _sources(fields, _INGRESS_RULE_SOURCES)
    elif resource_type in (NATIVE_SECURITY_GROUP, NATIVE_INGRESS):
        protocol = _protocol(fields, "ipProtocol", unknown)
        ports = _aws_ports(fields, protocol, unknown)
        sources = _sources(fields, _NATIVE_SOURCES)
    else:
        protocol = _protocol(fields, "protocol", unknown)
        ports = _aws_ports(fields, protocol, unknown)
        sources = _sources(fields, _GROUP_SOURCES)
        if fields.get("self") is True:
            sources.append(Source("security-group", "self", "self"))
    description = fields.get("description")
    description = description if isinstance(description, str) else None
    return [
        Opening(urn, name, resource_type, rule, index, protocol, ports, source, description, tuple(unknown))
        for source in sources
    ]


_GROUP_SOURCES = {
    "cidrBlocks": "cidr",
    "ipv6CidrBlocks": "cidr",
    "securityGroups": "security-group",
    "sourceSecurityGroupId": "security-group",
    "prefixListIds": "prefix-list",
}
_INGRESS_RULE_SOURCES = {
    "cidrIpv4": "cidr",
    "cidrIpv6": "cidr",
    "referencedSecurityGroupId": "security-group",
    "prefixListId": "prefix-list",
}


# AWS::EC2::SecurityGroupIngress and the Ingress entries of AWS::EC2::SecurityGroup, the same keys in both.
_NATIVE_SOURCES = {
    "cidrIp": "cidr",
    "cidrIpv6": "cidr",
    "sourceSecurityGroupId": "security-group",
    "sourceSecurityGroupName": "security-group",
    "sourcePrefixListId": "prefix-list",
}


def _sources(fields: Mapping, keys: dict[str, str]) -> list[Source]:
    out = []
    for key, kind in keys.items():
        value = fields.get(key)
        if value is None:
            continue
        items = [(key, value)] if isinstance(value, str) or value is UNKNOWN else _indexed(key, value)
        for where, item in items:
            out.append(_source(kind, where, item))
    return out


def _indexed(key, value):
    if not isinstance(value, Sequence):
        return [(key, value)]
    return [(f"{key}[{i}]", item) for i, item in enumerate(value)]


def _source(kind: str, where: str, value: Any) -> Source:
    if value is UNKNOWN:
        return Source(kind, "<unknown>", where, known=False)
    text = value if isinstance(value, str) else repr(value)
    network = cidr.parse(value) if kind == "cidr" and isinstance(value, str) else None
    return Source(kind, text, where, network)


def _protocol(fields: Mapping, key: str, unknown: list[str]) -> str:
    """Normalise `tcp`, `TCP`, `6`, 6.0, `-1`, `all`...; anything unreadable is ALL."""
    value = fields.get(key)
    if value is UNKNOWN:
        unknown.append(key)
        return ALL
    number = integer(value)
    if number is not None:
        return _PROTOCOL_NUMBERS.get(number, str(number)) if 0 <= number <= 255 else ALL
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if text in _PROTOCOL_NAMES else ALL


def _aws_ports(fields: Mapping, protocol: str, unknown: list[str]) -> tuple[int, int]:
    """AWS ignores ports for every protocol but TCP and UDP: those rules cover every port."""
    if protocol not in (TCP, UDP):
        return ANY_PORT
    ends = []
    for key in ("fromPort", "toPort"):
        value = fields.get(key)
        if value is UNKNOWN:
            unknown.append(key)
        ends.append(integer(value))
    if None in ends:
        return ANY_PORT
    return _clamp(min(ends), max(ends))


def _hcloud_ports(fields: Mapping, protocol: str, unknown: list[str]) -> tuple[int, int]:
    """Hetzner writes `"5000"`, `"9090-9101"` or `"any"`; no port on TCP/UDP also means any."""
    if protocol not in (TCP, UDP):
        return ANY_PORT
    value = fields.get("port")
    if value is UNKNOWN:
        unknown.append("port")
        return ANY_PORT
    text = str(value).strip() if value is not None else "any"
    lo, sep, hi = text.partition("-")
    ends = (integer(lo), integer(hi) if sep else integer(lo))
    if None in ends:
        return ANY_PORT
    return _clamp(min(ends), max(ends))


def _clamp(lo: int, hi: int) -> tuple[int, int]:
    return max(lo, 0), min(hi, 65535)


def integer(value: Any) -> int | None:
    """An integer written as int, integral float or numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    return value if isinstance(value, int) else None


def tag(props: Mapping[str, Any], key: str, field: str = "tags") -> Any:
    """A tag's value from AWS's `{key: value}` map or aws-native's `[{key, value}]` list; UNKNOWN passes through."""
    tags = props.get(field)
    if tags is UNKNOWN:
        return UNKNOWN
    if isinstance(tags, Mapping):
        return tags.get(key)
    if isinstance(tags, list):
        return next((t.get("value") for t in tags if isinstance(t, Mapping) and t.get("key") == key), None)
    return None
