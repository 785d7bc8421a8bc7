"""Stack policies: what only the whole stack shows, such as which group guards which host.

They read the final state of every resource (`AnalyzeStack`), find hosts and their firewalls by
the `kumomta-role` tag or label and by attachment, and resolve security-group sources through the
`Topology`. A verdict that hangs on a value preview does not know yet is left out and named once
by `stack-preview-unknowns`; nothing else is skipped.
"""

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from .model import DEFAULT_SECURITY_GROUP, Opening
from .rules import describe
from .topology import SENDING_IPS, Node, Topology


def topology(args: StackValidationArgs) -> Topology:
    return Topology(Node.of(resource) for resource in args.resources)


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
    topo = topology(args)
    for host in topo.hosts():
        own = {g for g in topo.guards_of[host.urn] if topo.nodes[g].type != DEFAULT_SECURITY_GROUP}
        if not own:
            report(
                f"{host.name}: no security group or firewall of its own guards it, so it falls back on the VPC "
                "default group (AWS) or on no cloud firewall at all (Hetzner). Fix: attach its role's group "
                "(vpcSecurityGroupIds, or securityGroups on its network interface) or firewall (firewallIds).",
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


def _stack_preview_unknowns(args: StackValidationArgs, report: ReportViolation) -> None:
    topo = topology(args)
    for (urn, key), names in topo.unresolved.items():
        report(
            f"{topo.nodes[urn].name}.{key}: unknown until the update runs, and it depends on no resource of "
            f"this stack, so which {names} it names is judged once it is known.",
            urn,
        )


def _policy(name: str, description: str, validate, level=EnforcementLevel.MANDATORY) -> StackValidationPolicy:
    return StackValidationPolicy(name=name, description=description, validate=validate, enforcement_level=level)


STACK_POLICIES = [
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
        "sending-ips-protected",
        "Elastic IPs and Primary IPs, the sending addresses, are protected.",
        _sending_ips_protected,
    ),
    _policy(
        "stack-preview-unknowns",
        "References unknown during preview that no dependency resolves are named once.",
        _stack_preview_unknowns,
        EnforcementLevel.ADVISORY,
    ),
]
