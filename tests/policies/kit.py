"""Build policy arguments in one call and assert on them in one line, so each test reads as a sentence.

`assert_violation("no-public-socks-proxy", sg(tcp(5000, "0.0.0.0/0")), "ingress[0]")` builds the
arguments the SDK would build (props behind its unknown-checking proxy), runs one policy and
checks that a message names the given fragments.
"""

from dataclasses import dataclass, field

from kumoguard import model, secrets
from kumoguard.rules import RESOURCE_POLICIES
from kumoguard.stack_rules import STACK_POLICIES
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

POLICIES = {policy.name: policy for policy in [*RESOURCE_POLICIES, *STACK_POLICIES]}
MANDATORY = [name for name, p in POLICIES.items() if p.enforcement_level == EnforcementLevel.MANDATORY]
ADVISORY = [name for name, p in POLICIES.items() if p.enforcement_level == EnforcementLevel.ADVISORY]
EXPOSURE_POLICIES = ["no-public-kumomta-http", "no-public-socks-proxy", "no-public-metrics", "no-public-ssh"]

UNKNOWN = UNKNOWN_STRING_VALUE  # what the engine sends for a value preview does not know yet

SG = model.SECURITY_GROUP
SG_RULE = model.SECURITY_GROUP_RULE
INGRESS_RULE = model.INGRESS_RULE
FIREWALL = model.FIREWALL
NATIVE_SG = model.NATIVE_SECURITY_GROUP
NATIVE_INGRESS = model.NATIVE_INGRESS


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::kumomta-infra::{type_}::{name}"


def _opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


# Resources, as one resource policy sees them.


def _props(props: dict):
    """Props as the SDK hands them to a policy, through the pack's secret-keeping step (secrets.deserialize)."""
    return unknown_checking_proxy(secrets.deserialize(props))


def resource(type_: str, name: str = "res", config: dict | None = None, /, **props) -> ResourceValidationArgs:
    return ResourceValidationArgs(type_, _props(props), urn(type_, name), name, _opts(), None, config)


def sg(*ingress: dict, name: str = "sg", **props) -> ResourceValidationArgs:
    return resource(SG, name, ingress=list(ingress), **props)


def sg_rule(name: str = "rule", **props) -> ResourceValidationArgs:
    return resource(SG_RULE, name, **{"type": "ingress", "description": "test rule", **props})


def ingress_rule(name: str = "rule", **props) -> ResourceValidationArgs:
    return resource(INGRESS_RULE, name, **{"description": "test rule", **props})


def firewall(*rules: dict, name: str = "fw", **props) -> ResourceValidationArgs:
    return resource(FIREWALL, name, rules=list(rules), **props)


def native_sg(*ingress: dict, name: str = "nsg", **props) -> ResourceValidationArgs:
    return resource(NATIVE_SG, name, securityGroupIngress=list(ingress), **props)


def native_ingress(name: str = "rule", **props) -> ResourceValidationArgs:
    return resource(NATIVE_INGRESS, name, **{"description": "test rule", **props})


def tcp(port: int, *cidrs: str, to: int | None = None) -> dict:
    """An inline AWS ingress entry."""
    v4 = [c for c in cidrs if ":" not in c]
    v6 = [c for c in cidrs if ":" in c]
    entry = {"protocol": "tcp", "fromPort": port, "toPort": port if to is None else to, "description": "test"}
    return {**entry, **({"cidrBlocks": v4} if v4 else {}), **({"ipv6CidrBlocks": v6} if v6 else {})}


def hrule(port: str, *ips: str, protocol: str = "tcp", direction: str = "in") -> dict:
    """A Hetzner firewall rule."""
    return {"direction": direction, "protocol": protocol, "port": port, "sourceIps": list(ips), "description": "t"}


# Running policies.


def violations(policy: str, args) -> list[str]:
    found: list[str] = []
    POLICIES[policy].validate(args, lambda message, urn=None: found.append(message))
    return found


def assert_violation(policy: str, args, *fragments: str) -> None:
    found = violations(policy, args)
    assert found, f"{policy} let this through"
    for fragment in fragments:
        assert any(fragment in message for message in found), f"no {policy} message names {fragment!r}: {found}"


def assert_no_violation(policy: str, args) -> None:
    assert violations(policy, args) == []


def flagged_by(args, policies=MANDATORY) -> set[str]:
    """The names of the policies (of the given ones that apply to this kind of args) that report it."""
    kind = ResourceValidationArgs if isinstance(args, ResourceValidationArgs) else StackValidationArgs
    applicable = [p for p in policies if _takes(POLICIES[p]) is kind]
    return {p for p in applicable if violations(p, args)}


def _takes(policy) -> type:
    return StackValidationArgs if policy in STACK_POLICIES else ResourceValidationArgs


# Stacks, as stack policies see them: `node()`s whose `deps` name other nodes.


@dataclass
class Node:
    type: str
    name: str
    props: dict
    protect: bool = False
    deps: dict[str, list[str]] = field(default_factory=dict)


def node(type_: str, name: str, /, protect: bool = False, deps: dict | None = None, **props) -> Node:
    return Node(type_, name, props, protect, deps or {})


def stack(*nodes: Node, config: dict | None = None) -> StackValidationArgs:
    built = {
        n.name: PolicyResource(
            n.type, _props(n.props), urn(n.type, n.name), n.name, _opts(n.protect), None, None, [], {}
        )
        for n in nodes
    }
    for n in nodes:
        for key, names in n.deps.items():
            built[n.name].property_dependencies[key] = [built[name] for name in names]
    return StackValidationArgs(list(built.values()), config)


INSTANCE = "aws:ec2/instance:Instance"
ENI = "aws:ec2/networkInterface:NetworkInterface"
EIP = "aws:ec2/eip:Eip"
SERVER = "hcloud:index/server:Server"
PRIMARY_IP = "hcloud:index/primaryIp:PrimaryIp"
PING8 = "203.0.113.10/32"
MONITORING = "10.42.200.0/24"


def aws_stack(*extra: Node, preview: bool = False, socks_source: dict | None = None, drop: tuple = ()) -> list[Node]:
    """The legitimate AWS layout: a group per role, one rule resource per rule, ENI-attached groups,
    protected EIPs. With `preview`, ids are unknown and references resolve by dependency only."""

    def ref(value: str) -> str:
        return UNKNOWN if preview else value

    def ids(value: str) -> dict:
        return {"id": UNKNOWN} if preview else {"id": value}

    def rule(name, group, port, deps=None, **source):
        props = {"securityGroupId": ref(group), "ipProtocol": "tcp", "fromPort": port, "toPort": port}
        return node(INGRESS_RULE, name, deps={"securityGroupId": [group], **(deps or {})}, **props, **source)

    socks = socks_source or {"referencedSecurityGroupId": ref("mta-sg")}
    nodes = [
        node(SG, "mta-sg", **ids("mta-sg"), name="mta-sg-1", tags={"kumomta-role": "mta"}),
        node(SG, "proxy-sg", **ids("proxy-sg"), name="proxy-sg-1", tags={"kumomta-role": "proxy"}),
        rule("mta-in-80", "mta-sg", 80, cidrIpv4="0.0.0.0/0"),
        rule("mta-in-443", "mta-sg", 443, cidrIpv4=PING8),
        rule("proxy-in-5000", "proxy-sg", 5000, {"referencedSecurityGroupId": ["mta-sg"]}, **socks),
        rule("proxy-in-9101", "proxy-sg", 9101, cidrIpv4=MONITORING),
    ]
    for role in ("mta", "proxy"):
        eni = f"{role}-eni"
        nodes += [
            node(
                ENI,
                eni,
                **ids(eni),
                securityGroups=[ref(f"{role}-sg")],
                privateIp=f"10.42.{len(role)}.10",
                deps={"securityGroups": [f"{role}-sg"]},
            ),
            node(
                INSTANCE,
                f"{role}-instance",
                **ids(f"{role}-i"),
                primaryNetworkInterface={"networkInterfaceId": ref(eni)},
                tags={"kumomta-role": role},
                deps={"primaryNetworkInterface": [eni]},
            ),
            node(
                EIP,
                f"{role}-eip",
                protect=True,
                **ids(f"{role}-eip"),
                networkInterface=ref(eni),
                publicIp=UNKNOWN if preview else f"198.51.100.{len(role)}",
                deps={"networkInterface": [eni]},
            ),
        ]
    return [n for n in nodes if n.name not in drop] + list(extra)


def hcloud_stack(*extra: Node, proxy_rules: tuple = (), drop: tuple = ()) -> list[Node]:
    """The Hetzner layout: a firewall per role applied by label selector, protected Primary IPs."""
    mta_rules = [hrule("80", "0.0.0.0/0", "::/0"), hrule("443", PING8)]
    nodes = [
        node(
            FIREWALL,
            "mta-fw",
            id="101",
            labels={"kumomta-role": "mta"},
            rules=mta_rules,
            applyTos=[{"labelSelector": "kumomta-role=mta"}],
        ),
        node(
            FIREWALL,
            "proxy-fw",
            id="102",
            labels={"kumomta-role": "proxy"},
            rules=[hrule("9101", MONITORING), *proxy_rules],
            applyTos=[{"labelSelector": "kumomta-role in (proxy)"}],
        ),
        node(SERVER, "mta", id="1", labels={"kumomta-role": "mta"}, ipv4Address="198.51.100.7"),
        node(SERVER, "proxy", id="2", labels={"kumomta-role": "proxy"}, ipv4Address="198.51.100.8"),
        node(PRIMARY_IP, "mta-ip", protect=True, id="201", assigneeId=1, ipAddress="198.51.100.7"),
        node(PRIMARY_IP, "proxy-ip", protect=True, id="202", assigneeId=2, ipAddress="198.51.100.8"),
    ]
    return [n for n in nodes if n.name not in drop] + list(extra)
