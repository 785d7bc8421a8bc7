"""Load balancers that publish a port of a host, turned into Openings once the stack shows them.

An internet-facing load balancer forwarding to a host's port is an ingress rule in disguise: no
single resource says so (the listener names a target group, the scheme is on the load balancer,
the port reached is on the target group or its attachments), so the whole stack is read. Each load
balancer becomes one set of Openings: the port reached on its targets, from the internet, or from
what its own security groups admit on the listener's port. The same judge as for firewalls then
decides (`exposure`). An NLB has no security group unless it was created with one, so by default
it admits the whole internet, however tight the target's own group is.

Property names, from the providers' schemas:
- pulumi-aws `lb.LoadBalancer` (`internal`, default false; `securityGroups`), `lb.Listener`
  (`loadBalancerArn`, `port`, `protocol`, `defaultActions[].targetGroupArn` and
  `.forward.targetGroups[].arn`), `lb.ListenerRule` (`listenerArn`, `actions[]`), `lb.TargetGroup`
  (`port`, `protocol`, `targetType`), `lb.TargetGroupAttachment` (`targetGroupArn`, `targetId`, `port`):
  https://www.pulumi.com/registry/packages/aws/api-docs/lb/
- pulumi-hcloud `LoadBalancerService` (`loadBalancerId`, `protocol` tcp/http/https, `listenPort`,
  `destinationPort`), `LoadBalancerTarget` (`loadBalancerId`, `type`, `serverId`, `labelSelector`),
  `LoadBalancer` (`targets[]`), `LoadBalancerNetwork` (`enablePublicInterface`, default true):
  https://www.pulumi.com/registry/packages/hcloud/api-docs/loadbalancerservice/
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import cidr
from .model import ALL, ANY_PORT, TCP, UDP, UNKNOWN, Opening, Source, integer
from .topology import GROUPS, INSTANCE, SERVER, Node, Topology, as_list, select

AWS_LB = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
AWS_LISTENER = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
AWS_LISTENER_RULE = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
AWS_TARGET_GROUP = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
AWS_ATTACHMENT = (
    "aws:lb/targetGroupAttachment:TargetGroupAttachment",
    "aws:alb/targetGroupAttachment:TargetGroupAttachment",
)
HC_LB = "hcloud:index/loadBalancer:LoadBalancer"
HC_SERVICE = "hcloud:index/loadBalancerService:LoadBalancerService"
HC_TARGET = "hcloud:index/loadBalancerTarget:LoadBalancerTarget"
HC_NETWORK = "hcloud:index/loadBalancerNetwork:LoadBalancerNetwork"

_INTERNET = "0.0.0.0/0"
# Where Hetzner forwards when destinationPort is not set: tcp requires it (the listen port is read
# then), http and https forward to 80.
_HC_DEFAULT_DESTINATION = {"http": 80, "https": 80}


@dataclass
class Published:
    """One load balancer and what it publishes."""

    name: str
    urn: str  # the load balancer, or the first resource pointing at one outside the stack
    openings: list[Opening] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)  # hosts of the stack it forwards to, by name
    hcloud: bool = False


def published(topo: Topology) -> list[Published]:
    """Every internet-facing load balancer of the stack that forwards to a port, as Openings."""
    out: dict[str, Published] = {}
    for listener in topo.of_type(*AWS_LISTENER):
        _aws_listener(topo, listener, out)
    for service in topo.of_type(HC_SERVICE):
        _hcloud_service(topo, service, out)
    return [p for p in out.values() if p.openings]


def _balancers(topo: Topology, node: Node, key: str, types, out) -> list[Published]:
    """The load balancers `node` belongs to; one outside the stack is named by its ID and keyed on `node`
    (its scheme unseen, it counts as internet-facing); [] while preview cannot tell."""
    value = node.props.get(key)
    found = topo.resolve(node, key, value, types, judged=True)
    if found is None:
        return []  # named by stack-preview-unknowns
    if not found:
        label = f"load balancer {_text(value)} (not in this stack)"
        return [out.setdefault(label, Published(label, node.urn))]
    return [out.setdefault(lb, Published(topo.nodes[lb].name, lb)) for lb in sorted(found)]


def _aws_listener(topo: Topology, listener: Node, out: dict[str, Published]) -> None:
    props = listener.props
    for entry in _balancers(topo, listener, "loadBalancerArn", AWS_LB, out):
        lb = topo.nodes[entry.urn] if topo.nodes[entry.urn].type in AWS_LB else None  # None: outside the stack
        internal = lb.props.get("internal") if lb else None
        if internal is True:
            continue
        unknown = ("internal",) if internal is UNKNOWN else ()
        sources = _aws_sources(topo, lb, props.get("port"))
        for reached, protocol, via, targets in _aws_forwards(topo, listener):
            entry.targets += [t for t in targets if t not in entry.targets]
            rule = f"listener {_text(props.get('port'))} -> {via}"
            protocol = _protocol(protocol if protocol is not None else props.get("protocol"))
            entry.openings += [
                Opening(listener.urn, listener.name, listener.type, rule, 0, protocol, reached, s, None, unknown)
                for s in sources
            ]


def _aws_sources(topo: Topology, lb: Node | None, listen_port: Any) -> list[Source]:
    """The internet, unless the load balancer's own security groups, all in the stack, admit less on
    the listener's port: then what they admit, prefix lists and all, for the same judge."""
    groups = lb.props.get("securityGroups") if lb else None
    if not isinstance(groups, list) or not groups:
        return _internet("internet-facing, no securityGroups")
    found: set[str] = set()
    for value in groups:
        resolved = topo.resolve(lb, "securityGroups", value, GROUPS)
        if not resolved:  # outside the stack or unknown: its rules cannot be read
            return _internet(f"securityGroups = {_text(value)}, which this stack does not show")
        found |= resolved
    port = integer(listen_port)
    sources = []
    for group in sorted(found):
        for opening in topo.rules_of.get(group, []):
            if port is None or opening.admits(port):
                where = f"{topo.nodes[group].name} {opening.rule} {opening.source.field}"
                sources.append(dataclasses.replace(opening.source, field=where))
    return sources


def _internet(why: str) -> list[Source]:
    """Every client: one source is enough for the judge (IPv6 clients, if any, only add to it)."""
    return [Source("cidr", _INTERNET, why, cidr.parse(_INTERNET))]


def _aws_forwards(topo: Topology, listener: Node):
    """(ports reached, protocol, label, target host names) for each target group a listener forwards to."""
    actions = [(listener, "defaultActions", a) for a in as_list(listener.props.get("defaultActions"))]
    for rule in topo.of_type(*AWS_LISTENER_RULE):
        if listener.urn in (topo.resolve(rule, "listenerArn", rule.props.get("listenerArn"), AWS_LISTENER) or ()):
            actions += [(rule, "actions", a) for a in as_list(rule.props.get("actions"))]
    for owner, key, action in actions:
        for arn in _target_group_arns(action):
            groups = topo.resolve(owner, key, arn, AWS_TARGET_GROUP, judged=True)
            if groups == set():
                yield ANY_PORT, None, f"target group {_text(arn)}, not in this stack (any port)", []
            for group in sorted(groups or ()):
                reached = _target_ports(topo, topo.nodes[group])
                if reached is not None:
                    yield reached


def _target_group_arns(action: Any) -> list[Any]:
    if action is UNKNOWN:
        return [UNKNOWN]
    if not isinstance(action, Mapping):
        return []
    arns = [action["targetGroupArn"]] if action.get("targetGroupArn") is not None else []
    forward = action.get("forward")
    if isinstance(forward, Mapping):
        arns += [g.get("arn") if isinstance(g, Mapping) else UNKNOWN for g in as_list(forward.get("targetGroups"))]
    return arns


def _target_ports(topo: Topology, group: Node):
    """The ports a target group reaches (each attachment's `port`, else the group's), its protocol,
    its name and its targets; None for Lambda targets, which have no port."""
    if group.props.get("targetType") == "lambda":
        return None
    reached, targets = [], []
    for attachment in topo.of_type(*AWS_ATTACHMENT):
        arn = attachment.props.get("targetGroupArn")
        if group.urn not in (topo.resolve(attachment, "targetGroupArn", arn, AWS_TARGET_GROUP) or ()):
            continue
        port = attachment.props.get("port")
        reached.append(_port(port if port is not None else group.props.get("port")))
        hosts = topo.resolve(attachment, "targetId", attachment.props.get("targetId"), (INSTANCE,)) or set()
        targets += [topo.nodes[h].name for h in sorted(hosts)]
    reached = reached or [_port(group.props.get("port"))]
    span = (min(lo for lo, _ in reached), max(hi for _, hi in reached))
    return span, group.props.get("protocol"), group.name, targets


def _hcloud_service(topo: Topology, service: Node, out: dict[str, Published]) -> None:
    props = service.props
    protocol = props.get("protocol")
    destination = props.get("destinationPort")
    if destination is None:
        name = protocol.strip().lower() if isinstance(protocol, str) else protocol
        destination = props.get("listenPort") if name == "tcp" else _HC_DEFAULT_DESTINATION.get(name)
    rule = f"service {_text(props.get('listenPort'))} -> {_text(destination)}"
    for entry in _balancers(topo, service, "loadBalancerId", (HC_LB,), out):
        entry.hcloud = True
        public, unknown = _hcloud_public(topo, entry.urn)
        if not public:
            continue
        entry.targets += [t for t in _hcloud_targets(topo, entry.urn) if t not in entry.targets]
        entry.openings += [
            Opening(
                service.urn,
                service.name,
                service.type,
                rule,
                0,
                _protocol(protocol),
                _port(destination),
                s,
                None,
                unknown,
            )
            for s in _internet("public interface")
        ]


def _hcloud_public(topo: Topology, lb: str) -> tuple[bool, tuple[str, ...]]:
    """A Hetzner load balancer is public unless a network attachment switches its public interface off."""
    for network in topo.of_type(HC_NETWORK):
        if lb in (topo.resolve(network, "loadBalancerId", network.props.get("loadBalancerId"), (HC_LB,)) or ()):
            flag = network.props.get("enablePublicInterface")
            if flag is False:
                return False, ()
            if flag is UNKNOWN:
                return True, ("enablePublicInterface",)
    return True, ()


def _hcloud_targets(topo: Topology, lb: str) -> list[str]:
    found: set[str] = set()
    node = topo.nodes.get(lb)
    for target in as_list(node.props.get("targets")) if node else []:
        if isinstance(target, Mapping) and target.get("serverId") is not None:
            found |= topo.resolve(node, "targets", target["serverId"], (SERVER,)) or set()
    for target in topo.of_type(HC_TARGET):
        if lb not in (topo.resolve(target, "loadBalancerId", target.props.get("loadBalancerId"), (HC_LB,)) or ()):
            continue
        if target.props.get("serverId") is not None:
            found |= topo.resolve(target, "serverId", target.props["serverId"], (SERVER,)) or set()
        found |= select(topo.of_type(SERVER), target.props.get("labelSelector"))
    return [topo.nodes[urn].name for urn in sorted(found)]


def _protocol(value: Any) -> str:
    """TCP, TLS, HTTP and HTTPS listeners carry TCP; UDP is UDP; anything else (TCP_UDP, GENEVE, unknown) all."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in ("tcp", "tls", "http", "https"):
        return TCP
    return UDP if text == "udp" else ALL


def _port(value: Any) -> tuple[int, int]:
    number = integer(value)
    return (number, number) if number is not None and 0 <= number <= 65535 else ANY_PORT


def _text(value: Any) -> str:
    if value is UNKNOWN:
        return "<unknown>"
    number = integer(value)
    return str(number if number is not None else value)
