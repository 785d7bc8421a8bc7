"""Resource policies: what no single ingress rule may say, whichever resource type writes it.

Each policy reads the normalised `Opening`s of a resource and never its raw properties. The
guarded ports are invariants of the deployment guide (8000 is loopback only, 5000 is for the MTA
hosts only, metrics are for the monitoring system only, SSH is for admins only), not a copy of the
project's port matrix.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from . import exposure, model, ports, private_keys
from .model import Opening
from .topology import INSTANCE, ROLE_KEY, SERVER

ROLES = ("mta", "proxy")


def openings(args: ResourceValidationArgs) -> list[Opening]:
    return model.openings(args.resource_type, model.plain(args.props), args.urn, args.name)


@dataclass(frozen=True)
class Guarded:
    """A TCP service that must never face the internet."""

    name: str
    what: str
    fix: str
    ranges: Callable[[Mapping[str, Any]], tuple[ports.Range, ...]]
    config_schema: PolicyConfigSchema | None = None


GUARDED = (
    Guarded(
        "no-public-kumomta-http",
        "the KumoMTA HTTP listener (loopback only, per the guide)",
        "delete the rule: kumod listens on 127.0.0.1:8000 and Nginx serves injection on 443",
        lambda _config: ((8000, 8000),),
    ),
    Guarded(
        "no-public-socks-proxy",
        "the KumoProxy SOCKS5 listener",
        "admit 5000 only from the MTA hosts' security group or their private addresses",
        lambda _config: ((5000, 5000),),
    ),
    Guarded(
        "no-public-metrics",
        "a metrics port",
        "admit metrics only from the monitoring system's own network (kumomta:monitoringCidrs)",
        ports.metrics_ports,
        PolicyConfigSchema({"metricsPorts": ports.METRICS_SCHEMA}),
    ),
    Guarded(
        "no-public-ssh",
        "SSH",
        "admit 22 only from admin networks (kumomta:adminCidrs), or use SSM Session Manager",
        lambda _config: ((22, 22),),
    ),
)


def describe(opening: Opening) -> str:
    """`ingress[1] (tcp 0-65535 from cidrBlocks[1] = 0.0.0.0/0)`: which rule, what it admits, from where."""
    source = opening.source
    widened = f"; {', '.join(opening.unknown)} unknown in preview, read as everything" if opening.unknown else ""
    return f"{opening.rule} ({opening.port_text()} from {source.field} = {source.text}{widened})"


def exposure_message(where: str, found: exposure.Exposure, what: str, fix: str, named: bool = False) -> str:
    """What an Exposure says: the one public source, or every source of the set that adds up.
    `named` prefixes each rule with its resource's name, for sets that span resources."""
    hits = ports.text(found.ports, "tcp")
    if found.alone:
        (opening,) = found.openings
        prefix = f"{where} {opening.name}" if named else where
        return (
            f"{prefix} {describe(opening)}: opens {hits} ({what}) to public source {opening.source.text}. Fix: {fix}."
        )
    return (
        f"{where}: {len(found.openings)} sources, each below the public threshold, together open {hits} ({what}) "
        f"to {exposure.amount(found)}: {exposure.sources_by_rule(found.openings, named)}. Fix: {fix}."
    )


def _exposure_policy(guarded: Guarded) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        for found in exposure.exposures(openings(args), guarded.ranges(args.get_config())):
            report(exposure_message(args.name, found, guarded.what, guarded.fix))

    return ResourceValidationPolicy(
        name=guarded.name,
        description=f"No ingress rule, security group or firewall opens {guarded.what} to a public source, alone or "
        "together.",
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=guarded.config_schema,
    )


def _http_loopback_only(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for opening in openings(args):
        if opening.admits(8000) and not opening.source.is_public:
            report(
                f"{args.name} {describe(opening)}: admits 8000/tcp. The guide keeps kumod's HTTP listener on "
                "127.0.0.1, so no firewall rule should name it. Fix: delete the rule; reach kumod through Nginx."
            )


def _described(args: ResourceValidationArgs, report: ReportViolation) -> None:
    seen = set()
    for opening in openings(args):
        if opening.rule not in seen and not (opening.description or "").strip():
            seen.add(opening.rule)
            report(f"{args.name} {opening.rule}: has no description. Fix: say what the rule is for.")


_TAGGED_TYPES = {
    model.SECURITY_GROUP: "tags",
    model.NATIVE_SECURITY_GROUP: "tags",
    model.FIREWALL: "labels",
    INSTANCE: "tags",
    SERVER: "labels",
}


def _role_tagged(args: ResourceValidationArgs, report: ReportViolation) -> None:
    key = _TAGGED_TYPES.get(args.resource_type)
    if key is None:
        return
    props = model.plain(args.props)
    role = model.tag(props, ROLE_KEY, key) if isinstance(props.get(key), dict | list) else props.get(key)
    if role is not model.UNKNOWN and role not in ROLES:
        report(
            f"{args.name}: {key} lack `{ROLE_KEY}: mta|proxy` (found {role!r}); stack policies find hosts and "
            f"their firewalls by it. Fix: set {key}[{ROLE_KEY!r}]."
        )


def _preview_unknowns(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Security-group sources are left to the stack policies, which resolve them by dependency."""
    parts = []
    for opening in openings(args):
        parts += [f"{opening.rule}.{field} (read as everything)" for field in opening.unknown]
        if opening.source.kind == "rule":
            parts.append(f"{opening.rule} (not judged)")
        elif opening.source.kind in ("cidr", "prefix-list") and not opening.source.known:
            parts.append(f"{opening.rule}.{opening.source.field}{_unjudged(opening)}")
    if parts:
        unique = "; ".join(dict.fromkeys(parts))
        report(f"{args.name}: unknown until the update runs: {unique}. They are judged once known.")


def reached(opening: Opening, config: Mapping[str, Any]) -> list[str]:
    """The guarded ports an opening admits, each with what listens there: `5000/tcp (the KumoProxy ...)`."""
    out = []
    if opening.protocol in (model.TCP, model.ALL):
        for guarded in GUARDED:
            hits = ports.overlap(opening.ports, guarded.ranges(config))
            if hits:
                out.append(f"{ports.text(hits, 'tcp')} ({guarded.what})")
    return out


def _unjudged(opening: Opening) -> str:
    """Which guarded ports an unknown source would reach, so a preview says what it did not judge."""
    guarded = reached(opening, {})
    if not guarded:
        return " (source not judged)"
    return (
        f", the source of {opening.port_text()}, which reaches {' and '.join(guarded)}: whether that is public "
        "is not judged yet"
    )


def _no_plain_private_keys(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for path, keys in private_keys.in_plain_values(model.plain(args.props)):
        report(
            f"{args.name} input {path}: holds PEM private key material in plain text: {'; '.join(map(str, keys))}. "
            "The stack's state and every preview show it. Fix: make it a secret: wrap the value in "
            "pulumi.Output.secret(...) (additional_secret_outputs marks only the resource's outputs; this input "
            "would stay plain)."
        )


def _advisory(name: str, description: str, validate) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.ADVISORY
    )


RESOURCE_POLICIES = [
    *(_exposure_policy(guarded) for guarded in GUARDED),
    ResourceValidationPolicy(
        name="no-plain-private-keys",
        description="No resource input holds a PEM private key unless it is a Pulumi secret.",
        validate=_no_plain_private_keys,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    _advisory("kumomta-http-loopback-only", "No ingress rule admits 8000/tcp from anywhere.", _http_loopback_only),
    _advisory("ingress-rule-described", "Every ingress rule says what it is for.", _described),
    _advisory("role-tagged", f"Hosts and their firewalls carry `{ROLE_KEY}: mta|proxy`.", _role_tagged),
    _advisory("preview-unknowns", "Rule values unknown during preview are named once.", _preview_unknowns),
]
