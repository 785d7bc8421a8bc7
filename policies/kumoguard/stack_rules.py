"""Stack policies: what only the whole stack shows, such as which group guards which host.

They read the final state of every resource (`AnalyzeStack`), find hosts and their firewalls by
the `kumomta-role` tag or label and by attachment, and resolve security-group sources, prefix lists
and load balancers through the `Topology`. A verdict that hangs on a value preview does not know
yet is left out and named once by `stack-preview-unknowns`; nothing else is skipped. What the stack
cannot show at all (a prefix list defined elsewhere) fails closed.
"""

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from . import balancers, cidr, exposure, model, ports, private_keys
from .model import DEFAULT_SECURITY_GROUP, UNKNOWN, Opening, Source
from .rules import GUARDED, Guarded, describe, exposure_message, reached
from .topology import SENDING_IPS, Node, Topology

ALLOWED_PREFIX_LISTS_SCHEMA = {
    "type": "array",
    "description": "Prefix lists this stack does not define (AWS-managed ones, say) that may still be a source on "
    "22, 5000, 8000 or a metrics port: each ID is a deliberate decision that its entries are not public.",
    "items": {"type": "string", "pattern": "^pl-[0-9a-f]+$"},
    "default": [],
}


def topology(args: StackValidationArgs) -> Topology:
    return Topology(Node.of(resource) for resource in args.resources)


@dataclasses.dataclass
class RuleSet:
    """What one security group, firewall or load balancer admits, prefix lists read into their entries."""

    name: str
    urn: str
    openings: list[Opening]
    unseen: list[Opening]  # prefix-list sources whose entries the stack does not show
    balancer: balancers.Published | None = None


def rule_sets(topo: Topology) -> list[RuleSet]:
    """Every rule set of the stack. Resolving them fills `topo.unresolved` with what preview left open."""
    found = [(name, urn, openings, None) for name, urn, openings in topo.guard_rules()]
    found += [(lb.name, lb.urn, lb.openings, lb) for lb in balancers.published(topo)]
    out = []
    for name, urn, openings, balancer in found:
        expanded: list[Opening] = []
        unseen: list[Opening] = []
        for opening in openings:
            if opening.source.kind != "prefix-list":
                expanded.append(opening)
                continue
            lists = topo.prefix_lists(opening)
            if lists == set():
                unseen.append(opening)
            for plist in sorted(lists or ()):
                expanded += _entries(topo, plist, opening)
        out.append(RuleSet(name, urn, expanded, unseen, balancer))
    return out


def _entries(topo: Topology, plist: str, opening: Opening) -> list[Opening]:
    """The opening once per entry of the prefix list; an unknown entry is left to stack-preview-unknowns."""
    out = []
    name = topo.nodes[plist].name
    for urn, key, value in topo.entries(plist):
        if value is UNKNOWN:
            whole = key == "entries"
            topo.unresolved[(urn, key)] = (
                f"so whether {'the entries' if whole else 'this entry'} of {name} {'are' if whole else 'is'} public"
            )
            continue
        text = value if isinstance(value, str) else repr(value)
        field = f"{opening.source.field} = {opening.source.text} -> {topo.nodes[urn].name}.{key}"
        source = Source("cidr", text, field, cidr.parse(text) if isinstance(value, str) else None, via=name)
        out.append(dataclasses.replace(opening, source=source))
    return out


def _no_public_guarded_ports(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    allowed = set(config.get("allowedPrefixLists", []))
    for rules in rule_sets(topology(args)):
        for opening in rules.unseen:
            guarded = reached(opening, config)
            if guarded and opening.source.text not in allowed:
                report(_unseen_message(rules.name, opening, guarded), opening.urn)
        for guarded in GUARDED:
            for found in exposure.exposures(rules.openings, guarded.ranges(config)):
                if not _reported_by_a_resource_policy(found):
                    report(_stack_exposure_message(rules, found, guarded), rules.urn)


def _reported_by_a_resource_policy(found: exposure.Exposure) -> bool:
    """One resource's own sources, no prefix list entry among them: its resource policy said it already."""
    urns = {o.urn for o in found.openings}
    return len(urns) == 1 and all(o.type in model.RULE_TYPES and not o.source.via for o in found.openings)


def _stack_exposure_message(rules: RuleSet, found: exposure.Exposure, guarded: Guarded) -> str:
    if rules.balancer is None:
        return exposure_message(rules.name, found, guarded.what, guarded.fix, named=True)
    targets = ", ".join(rules.balancer.targets) or "none in this stack"
    where = f"{rules.name} (an internet-facing load balancer; targets: {targets})"
    internal = (
        "a LoadBalancerNetwork with enablePublicInterface=False"
        if rules.balancer.hcloud
        else "internal=True, or security groups that admit only private sources"
    )
    fix = f"make {rules.name} private ({internal}), or stop forwarding to {ports.text(found.ports, 'tcp')}"
    return exposure_message(where, found, guarded.what, fix, named=True)


def _unseen_message(name: str, opening: Opening, guarded: list[str]) -> str:
    plist = opening.source.text
    return (
        f"{name} {opening.name} {describe(opening)}: admits {', '.join(guarded)} from prefix list {plist}, whose "
        "entries this stack does not show, so whether they are public cannot be judged. Fix: "
        f"define the list in this stack (aws.ec2.ManagedPrefixList with its entries), or allow it deliberately "
        f'with the policy config {{"no-public-guarded-ports": {{"allowedPrefixLists": ["{plist}"]}}}}.'
    )


def _metrics_port_readable(args: StackValidationArgs, report: ReportViolation) -> None:
    for setting in ports.stack_metrics_settings():
        if setting.ports is None:
            report(
                f"{setting.key}: {_json(setting.value)} looks like a metrics port setting but is not a port between "
                "1 and 65535 the pack can read, so it cannot tell which rules expose it. Fix: write the port as a "
                f"plain number (e.g. {setting.key}: 9101)."
            )


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _socks_from_mta_only(args: StackValidationArgs, report: ReportViolation) -> None:
    topo = topology(args)
    mta_addresses = topo.addresses("mta")
    for guard, openings in topo.rules_of.items():
        if "proxy" not in topo.guard_roles(guard):
            continue
        for opening in openings:
            if opening.admits(5000) and _from_mta(topo, guard, opening, mta_addresses) is False:
                report(
                    f"{opening.name} {describe(opening)}: admits 5000/tcp to the proxy through "
                    f"{topo.nodes[guard].name}, from a source that is neither an MTA host's security group nor a "
                    "private address. Fix: name the MTA security group (referencedSecurityGroupId) or the MTA "
                    "hosts' private addresses.",
                    opening.urn,
                )


def _from_mta(topo: Topology, guard: str, opening: Opening, mta_addresses) -> bool | None:
    """Whether the source is the MTA hosts; None when preview does not know it yet."""
    source = opening.source
    if source.kind == "security-group":  # resolved by value or, in preview, by dependency
        groups = topo.sources[(guard, opening)]
        return None if groups is None else bool(groups) and all("mta" in topo.guard_roles(g) for g in groups)
    if not source.known:
        return None
    if source.kind != "cidr" or source.network is None:
        return False
    single_mta = source.network.num_addresses == 1 and source.network.network_address in mta_addresses
    return source.is_private or single_mta


def _mta_never_admits_8000(args: StackValidationArgs, report: ReportViolation) -> None:
    topo = topology(args)
    for guard, openings in topo.rules_of.items():
        if "mta" not in topo.guard_roles(guard):
            continue
        for opening in openings:
            if opening.admits(8000):
                report(
                    f"{opening.name} {describe(opening)}: admits 8000/tcp on {topo.nodes[guard].name}, which "
                    "guards an MTA host. kumod's HTTP listener is loopback only. Fix: delete the rule or narrow "
                    "its ports so they leave out 8000.",
                    opening.urn,
                )


def _host_has_own_guard(args: StackValidationArgs, report: ReportViolation) -> None:
    """A host guarded only by a group outside the stack, or one preview cannot resolve, is named by
    host-guard-outside-stack or stack-preview-unknowns instead: the pack cannot say it has none."""
    topo = topology(args)
    for host in topo.hosts():
        own = {g for g in topo.guards_of[host.urn] if topo.nodes[g].type != DEFAULT_SECURITY_GROUP}
        if not own and host.urn not in topo.outside and host.urn not in topo.unknown_guards:
            report(
                f"{host.name}: no security group or firewall of its own guards it, so it falls back on the VPC "
                "default group (AWS) or on no cloud firewall at all (Hetzner). Fix: attach its role's group "
                "(vpcSecurityGroupIds, or securityGroups on its network interface) or firewall (firewallIds).",
                host.urn,
            )


def _host_guard_outside_stack(args: StackValidationArgs, report: ReportViolation) -> None:
    topo = topology(args)
    for host in topo.hosts():
        outside = sorted(topo.outside.get(host.urn, ()))
        if outside:
            report(
                f"{host.name}: guarded by {', '.join(outside)}, which this stack does not define, so the pack cannot "
                "judge its rules. Fix: define the group or firewall in this stack, or review its rules yourself.",
                host.urn,
            )


def _sending_ips_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    for resource in args.resources:
        if resource.resource_type in SENDING_IPS and not resource.opts.protect:
            report(
                f"{resource.name}: this sending IP carries the mail reputation, and a replace or destroy would "
                "release it for good. Fix: set ResourceOptions(protect=True, retain_on_delete=True).",
                resource.urn,
            )


STACK = "pulumi:pulumi:Stack"


def _no_plain_private_keys_in_stack_outputs(args: StackValidationArgs, report: ReportViolation) -> None:
    """The stack resource's properties in AnalyzeStack are its outputs, as `pulumi.export` registered them."""
    for resource in args.resources:
        if resource.resource_type != STACK:
            continue
        for path, keys in private_keys.in_plain_values(model.plain(resource.props)):
            export = path.split(".")[0].split("[")[0]
            report(
                f"{resource.name} (the stack) output {path}: holds PEM private key material in plain text: "
                f"{'; '.join(map(str, keys))}. `pulumi stack output` and the stack's state show it. Fix: make it a "
                f'secret: pulumi.export("{export}", pulumi.Output.secret(...)), or additional_secret_outputs on the '
                "resource whose output it is.",
                resource.urn,
            )


def _stack_preview_unknowns(args: StackValidationArgs, report: ReportViolation) -> None:
    topo = topology(args)
    rule_sets(topo)  # resolves prefix lists and load balancers, so what they leave open is named too
    for (urn, key), left in topo.unresolved.items():
        report(f"{topo.nodes[urn].name}.{key}: unknown until the update runs, {left} is judged once it is known.", urn)


def _policy(
    name: str, description: str, validate, level=EnforcementLevel.MANDATORY, schema: Mapping | None = None
) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=level,
        config_schema=PolicyConfigSchema(dict(schema)) if schema else None,
    )


STACK_POLICIES = [
    _policy(
        "no-public-guarded-ports",
        "Per security group, firewall or load balancer, all rules together: 22, 5000, 8000 and metrics ports admit "
        "no public set of sources; a prefix list counts by its entries, and one the stack does not show fails closed.",
        _no_public_guarded_ports,
        schema={"metricsPorts": ports.METRICS_SCHEMA, "allowedPrefixLists": ALLOWED_PREFIX_LISTS_SCHEMA},
    ),
    _policy(
        "metrics-port-readable",
        "Every stack setting that looks like a metrics port names a port the pack can read.",
        _metrics_port_readable,
    ),
    _policy(
        "socks-from-mta-only",
        "The proxy's 5000/tcp admits only the MTA hosts' security group or private addresses.",
        _socks_from_mta_only,
    ),
    _policy(
        "mta-never-admits-8000",
        "No security group or firewall guarding an MTA host admits 8000/tcp from anywhere.",
        _mta_never_admits_8000,
    ),
    _policy(
        "host-has-own-guard",
        "Every host has a security group or firewall of its own, not the VPC default.",
        _host_has_own_guard,
    ),
    _policy(
        "host-guard-outside-stack",
        "A host guarded by a group or firewall this stack does not define is named: its rules are not judged here.",
        _host_guard_outside_stack,
        EnforcementLevel.ADVISORY,
    ),
    _policy(
        "sending-ips-protected",
        "Elastic IPs and Primary IPs, the sending addresses, are protected.",
        _sending_ips_protected,
    ),
    _policy(
        "no-plain-private-keys-in-stack-outputs",
        "No stack output holds a PEM private key unless it is a Pulumi secret.",
        _no_plain_private_keys_in_stack_outputs,
    ),
    _policy(
        "stack-preview-unknowns",
        "References unknown during preview that no dependency resolves are named once.",
        _stack_preview_unknowns,
        EnforcementLevel.ADVISORY,
    ),
]
