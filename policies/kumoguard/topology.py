"""The stack as a graph: hosts, the firewalls guarding them, the rules of each firewall.

Stack policies need what no single resource says: which security groups or firewalls guard which
host, which group a rule's source names, and which entries a prefix list holds. A reference is
resolved by value (the target's `id` output) or, while preview does not know the value yet, by the
engine's property dependencies (the rule's `referencedSecurityGroupId` depends on the group whose
id flows into it). What neither resolves is kept in `unresolved`, to be named once as advisory; a
known value that names nothing in the stack (a group made elsewhere) is kept as outside the stack.
"""

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import model
from .model import UNKNOWN, Opening

ROLE_KEY = "kumomta-role"

INSTANCE = "aws:ec2/instance:Instance"
ENI = "aws:ec2/networkInterface:NetworkInterface"
ENI_SG_ATTACHMENT = "aws:ec2/networkInterfaceSecurityGroupAttachment:NetworkInterfaceSecurityGroupAttachment"
ENI_ATTACHMENT = "aws:ec2/networkInterfaceAttachment:NetworkInterfaceAttachment"
EIP = "aws:ec2/eip:Eip"
EIP_ASSOCIATION = "aws:ec2/eipAssociation:EipAssociation"
SERVER = "hcloud:index/server:Server"
FIREWALL_ATTACHMENT = "hcloud:index/firewallAttachment:FirewallAttachment"
PRIMARY_IP = "hcloud:index/primaryIp:PrimaryIp"
SERVER_NETWORK = "hcloud:index/serverNetwork:ServerNetwork"

PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
PREFIX_LIST_ENTRY = "aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry"

HOSTS = (INSTANCE, SERVER)
GROUPS = (model.SECURITY_GROUP, model.DEFAULT_SECURITY_GROUP, model.NATIVE_SECURITY_GROUP)
GUARDS = (*GROUPS, model.FIREWALL)
SENDING_IPS = (EIP, PRIMARY_IP)
# Rule resources and the property naming the group they belong to (aws-native may name it instead).
_RULE_GROUP_KEYS = {
    model.SECURITY_GROUP_RULE: ("securityGroupId",),
    model.INGRESS_RULE: ("securityGroupId",),
    model.NATIVE_INGRESS: ("groupId", "groupName"),
}

# Keys holding a host's own addresses, on hosts and on the interfaces and IPs tied to them.
_ADDRESS_KEYS = (
    "publicIp",
    "privateIp",
    "privateIps",
    "ipv6Addresses",
    "ipv4Address",
    "ipv6Address",
    "ipAddress",
    "ip",
)

# (type, key, target types): references that tie a NIC or an address to a machine. Followed both
# ways, they group a host with its interfaces and IPs.
_MACHINE_LINKS = (
    (INSTANCE, "primaryNetworkInterface.networkInterfaceId", (ENI,)),
    (INSTANCE, "networkInterfaces[].networkInterfaceId", (ENI,)),
    (ENI_ATTACHMENT, "instanceId", (INSTANCE,)),
    (ENI_ATTACHMENT, "networkInterfaceId", (ENI,)),
    (EIP, "instance", (INSTANCE,)),
    (EIP, "networkInterface", (ENI,)),
    (EIP_ASSOCIATION, "allocationId", (EIP,)),
    (EIP_ASSOCIATION, "instanceId", (INSTANCE,)),
    (EIP_ASSOCIATION, "networkInterfaceId", (ENI,)),
    (PRIMARY_IP, "assigneeId", (SERVER,)),
    (SERVER_NETWORK, "serverId", (SERVER,)),
)

# (type, key, target types): references from a machine part to the groups or firewalls guarding it.
_GUARD_LINKS = (
    (INSTANCE, "vpcSecurityGroupIds[]", GROUPS),
    (INSTANCE, "securityGroups[]", GROUPS),
    (ENI, "securityGroups[]", GROUPS),
    (SERVER, "firewallIds[]", (model.FIREWALL,)),
)

# Other keys a resource is found by, besides its `id` output.
_ALIASES = {
    model.SECURITY_GROUP: ("name",),
    model.NATIVE_SECURITY_GROUP: ("groupId", "groupName"),
    EIP: ("allocationId",),
    PREFIX_LIST: ("arn",),
    "aws:lb/loadBalancer:LoadBalancer": ("arn",),
    "aws:alb/loadBalancer:LoadBalancer": ("arn",),
    "aws:lb/listener:Listener": ("arn",),
    "aws:alb/listener:Listener": ("arn",),
    "aws:lb/targetGroup:TargetGroup": ("arn",),
    "aws:alb/targetGroup:TargetGroup": ("arn",),
}


@dataclass
class Node:
    """A stack resource, with plain props and the URNs each top-level property depends on."""

    urn: str
    type: str
    name: str
    props: dict[str, Any]
    deps: dict[str, set[str]] = field(default_factory=dict)
    protect: bool = False

    @classmethod
    def of(cls, resource) -> "Node":
        """From a pulumi_policy PolicyResource."""
        deps = {key: {dep.urn for dep in values} for key, values in resource.property_dependencies.items()}
        return cls(
            resource.urn,
            resource.resource_type,
            resource.name,
            model.plain(resource.props),
            deps,
            bool(resource.opts.protect),
        )

    @property
    def role(self) -> str | None:
        """The `kumomta-role` tag (AWS, aws-native) or label (Hetzner), if known."""
        role = model.tag(self.props, ROLE_KEY, "labels" if self.type.startswith("hcloud:") else "tags")
        return role if isinstance(role, str) else None


class Topology:
    """Hosts, guards, rules and the links between them, resolved once per stack."""

    def __init__(self, nodes: Iterable[Node]):
        self.nodes = {node.urn: node for node in nodes}
        self.unresolved: dict[tuple[str, str], str] = {}  # (urn, property) -> what is left unjudged
        self.outside: dict[str, set[str]] = {}  # host -> guards it names that this stack does not hold
        self.unknown_guards: set[str] = set()  # hosts naming a guard preview cannot resolve
        self.loose_rules: dict[str, list[Opening]] = {}  # rule resources of a group outside the stack
        self._index: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for key in ("id", *_ALIASES.get(node.type, ())):
                value = node.props.get(key)
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    self._index.setdefault(_key(value), []).append(node.urn)
        self.machines = self._machines()
        self.guards_of = self._guards_of()
        self.rules_of = self._rules_of()
        self.entries_of: dict[str, list[tuple[str, str, Any]]] = {}  # prefix list -> its entry resources
        for entry in self.of_type(PREFIX_LIST_ENTRY):
            for plist in self.resolve(entry, "prefixListId", entry.props.get("prefixListId"), (PREFIX_LIST,)) or ():
                self.entries_of.setdefault(plist, []).append((entry.urn, "cidr", entry.props.get("cidr")))
        # For each security-group source of each guard's rules: the groups it names, None if unknown.
        self.sources = {
            (guard, opening): self._source_guards(guard, opening)
            for guard, openings in self.rules_of.items()
            for opening in openings
            if opening.source.kind == "security-group"
        }

    def of_type(self, *types: str) -> list[Node]:
        return [node for node in self.nodes.values() if node.type in types]

    def hosts(self) -> list[Node]:
        return self.of_type(*HOSTS)

    def guard_roles(self, guard: str) -> set[str]:
        """A guard's own role tag plus the roles of every host it guards."""
        roles = {self.nodes[guard].role} | {self.nodes[h].role for h, gs in self.guards_of.items() if guard in gs}
        return {role for role in roles if role}

    def addresses(self, role: str) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        """Every address of every host of `role`, its interfaces and its IPs."""
        members = {urn for host in self.hosts() if host.role == role for urn in self.machines[host.urn]}
        members |= {node.urn for node in self.nodes.values() if node.role == role and node.type not in GUARDS}
        out = set()
        for urn in members:
            for key in _ADDRESS_KEYS:
                for value in _flat(self.nodes[urn].props.get(key)):
                    try:
                        out.add(ipaddress.ip_address(str(value).split("/")[0]))
                    except ValueError:
                        continue
        return out

    def _source_guards(self, guard: str, opening: Opening) -> set[str] | None:
        """The groups a security-group source names; None when preview cannot tell which."""
        if opening.source.text == "self":
            return {guard}
        key = opening.source.field if opening.rule == "rule" else opening.rule
        value = opening.source.text if opening.source.known else UNKNOWN
        return self.resolve(self.nodes[opening.urn], key.split("[")[0], value, GROUPS, judged=True)

    def resolve(self, node: Node, key: str, value: Any, types: tuple[str, ...], judged=False) -> set[str] | None:
        """The nodes of `types` that `value`, read under top-level property `key`, names.

        A known value the stack does not hold names nothing (an external group, say): empty set.
        An unknown value falls back on the property's dependencies; None if they name none, which
        is recorded in `unresolved` when a policy's verdict (`judged`) hangs on it.
        """
        if value is not UNKNOWN:
            return {urn for urn in self._index.get(_key(value), ()) if self.nodes[urn].type in types}
        found = {urn for urn in node.deps.get(key, ()) if urn in self.nodes and self.nodes[urn].type in types}
        if found:
            return found
        if judged:
            names = "/".join(t.split(":")[-1] for t in types)
            self.unresolved[(node.urn, key)] = f"and it depends on no resource of this stack, so which {names} it names"
        return None

    def prefix_lists(self, opening: Opening) -> set[str] | None:
        """The ManagedPrefixLists a prefix-list source names: empty when the stack holds none of them
        (an AWS-managed list, say), None when preview cannot tell yet."""
        key = opening.source.field if opening.rule == "rule" else opening.rule
        value = opening.source.text if opening.source.known else UNKNOWN
        return self.resolve(self.nodes[opening.urn], key.split("[")[0], value, (PREFIX_LIST,), judged=True)

    def entries(self, prefix_list: str) -> list[tuple[str, str, Any]]:
        """(URN, property, CIDR) of each entry of a prefix list: its inline `entries`, then its
        ManagedPrefixListEntry resources."""
        inline = self.nodes[prefix_list].props.get("entries")
        out: list[tuple[str, str, Any]] = [(prefix_list, "entries", UNKNOWN)] if inline is UNKNOWN else []
        for index, entry in enumerate(as_list(inline) if inline is not UNKNOWN else []):
            value = entry.get("cidr") if isinstance(entry, Mapping) else UNKNOWN
            out.append((prefix_list, f"entries[{index}].cidr", value))
        return out + self.entries_of.get(prefix_list, [])

    def guard_rules(self) -> list[tuple[str, str, list[Opening]]]:
        """(name, urn, openings) of every security group or firewall, inline rules and rule resources
        together, and of each group outside the stack that rule resources point at."""
        out = [(self.nodes[g].name, g, openings) for g, openings in self.rules_of.items()]
        return out + [(label, openings[0].urn, openings) for label, openings in self.loose_rules.items()]

    def _links(self, links, missing: dict[str, set] | None = None) -> list[tuple[Node, set[str]]]:
        """(source node, resolved target URNs) for each declared link that the stack holds; with
        `missing`, the values that resolve to nothing (UNKNOWN when preview cannot tell) per node."""
        out = []
        for source_type, path, types in links:
            for node in self.of_type(source_type):
                key = path.split(".")[0].split("[")[0]
                for value in _walk(node.props, path):
                    targets = self.resolve(node, key, value, types, judged=missing is not None)
                    if targets:
                        out.append((node, targets))
                    elif missing is not None:
                        missing.setdefault(node.urn, set()).add(UNKNOWN if targets is None else _key(value))
        return out

    def _machines(self) -> dict[str, set[str]]:
        """For each host, itself plus the interfaces and IPs linked to it (transitively)."""
        edges: dict[str, set[str]] = {}
        for node, targets in self._links(_MACHINE_LINKS):
            for target in targets:
                edges.setdefault(node.urn, set()).add(target)
                edges.setdefault(target, set()).add(node.urn)
        machines = {}
        for host in self.hosts():
            seen, todo = {host.urn}, [host.urn]
            while todo:
                for nxt in edges.get(todo.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            machines[host.urn] = seen
        return machines

    def _guards_of(self) -> dict[str, set[str]]:
        """For each host, the groups or firewalls guarding it, however they were attached."""
        attached: dict[str, set[str]] = {}
        missing: dict[str, set] = {}
        for node, targets in self._links(_GUARD_LINKS, missing):
            attached.setdefault(node.urn, set()).update(targets)
        for node in self.of_type(ENI_SG_ATTACHMENT):
            group = node.props.get("securityGroupId")
            groups = self.resolve(node, "securityGroupId", group, GROUPS, judged=True)
            for eni in self.resolve(node, "networkInterfaceId", node.props.get("networkInterfaceId"), (ENI,)) or ():
                attached.setdefault(eni, set()).update(groups or ())
                if not groups:
                    missing.setdefault(eni, set()).add(UNKNOWN if groups is None else _key(group))
        for firewall, servers in self._firewall_targets():
            for server in servers:
                attached.setdefault(server, set()).add(firewall)
        for host, parts in self.machines.items():
            unseen = set().union(*(missing.get(part, set()) for part in parts))
            if UNKNOWN in unseen:
                self.unknown_guards.add(host)
            if unseen - {UNKNOWN}:
                self.outside[host] = unseen - {UNKNOWN}
        return {
            host: set().union(*(attached.get(part, set()) for part in parts)) for host, parts in self.machines.items()
        }

    def _firewall_targets(self):
        """(firewall URN, server URNs) from `applyTos` and from FirewallAttachment resources."""
        servers = self.of_type(SERVER)
        for firewall in self.of_type(model.FIREWALL):
            for target in as_list(firewall.props.get("applyTos")):
                if not isinstance(target, Mapping):
                    continue
                if target.get("server") is not None:
                    yield firewall.urn, self.resolve(firewall, "applyTos", target["server"], (SERVER,)) or set()
                if target.get("labelSelector") is not None:
                    yield firewall.urn, select(servers, target["labelSelector"])
        for attachment in self.of_type(FIREWALL_ATTACHMENT):
            props = attachment.props
            for firewall in self.resolve(attachment, "firewallId", props.get("firewallId"), (model.FIREWALL,)) or ():
                for server_id in as_list(props.get("serverIds")):
                    yield firewall, self.resolve(attachment, "serverIds", server_id, (SERVER,)) or set()
                for selector in as_list(props.get("labelSelectors")):
                    yield firewall, select(servers, selector)

    def _rules_of(self) -> dict[str, list[Opening]]:
        """For each guard, its inline rules plus the rule resources that point at it. Rule resources
        of a group the stack does not hold are kept together per group in `loose_rules`."""
        rules = {g.urn: model.openings(g.type, g.props, g.urn, g.name) for g in self.of_type(*GUARDS)}
        for node in self.of_type(*_RULE_GROUP_KEYS):
            key = next((k for k in _RULE_GROUP_KEYS[node.type] if node.props.get(k) is not None), "securityGroupId")
            group = node.props.get(key)
            guards = self.resolve(node, key, group, GROUPS, judged=True)
            found = model.openings(node.type, node.props, node.urn, node.name)
            for guard in guards or ():
                rules[guard] += found
            if not guards and found:  # a group outside the stack gathers its rules; an unknown one, none
                known = guards is not None and isinstance(group, str | int | float)
                label = f"security group {_key(group)}" if known else f"{node.name} (its group unknown)"
                self.loose_rules.setdefault(label, []).extend(found)
        return rules


def _key(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def as_list(value: Any) -> list:
    if value is UNKNOWN:
        return [UNKNOWN]
    return list(value) if isinstance(value, list | tuple) else []


def _flat(value: Any) -> list:
    return [v for v in as_list(value) if v is not UNKNOWN] if isinstance(value, list | tuple) else [value]


def _walk(props: Mapping, path: str) -> list:
    """Values at `a.b` / `a[].b` paths; unknown containers yield UNKNOWN, missing ones nothing."""
    values: list = [props]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part.removesuffix("[]")
        nxt = []
        for value in values:
            if value is UNKNOWN:
                nxt.append(UNKNOWN)
            elif isinstance(value, Mapping) and value.get(key) is not None:
                nxt += as_list(value[key]) if many else [value[key]]
        values = nxt
    return values


def select(servers: list[Node], selector: Any) -> set[str]:
    """Servers whose labels match a Hetzner label selector (`k=v`, `k!=v`, `k`, `!k`, `k in (a,b)`)."""
    if not isinstance(selector, str):
        return set()
    return {s.urn for s in servers if all(_matches(s.props.get("labels"), term) for term in _terms(selector))}


def _terms(selector: str) -> list[str]:
    terms, depth, start = [], 0, 0
    for i, char in enumerate(selector):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            terms.append(selector[start:i].strip())
            start = i + 1
    return [*terms, selector[start:].strip()]


def _matches(labels: Any, term: str) -> bool:
    labels = labels if isinstance(labels, Mapping) else {}
    for op in (" notin ", " in "):
        if op in term:
            key, _, rest = term.partition(op)
            options = {v.strip() for v in rest.strip().strip("()").split(",")}
            return (labels.get(key.strip()) in options) == (op == " in ")
    for op in ("!=", "==", "="):
        if op in term:
            key, _, value = term.partition(op)
            return (labels.get(key.strip()) == value.strip()) == (op != "!=")
    return (term.lstrip("!") in labels) != term.startswith("!")
