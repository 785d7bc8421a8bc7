"""What the clouds allow of the rules the matrix makes from the settings: checked before anything is declared.

Each check names the config key to change, the limit and where the cloud documents it, so the first
`up` does not fail halfway on a limit that preview never saw.
"""

from collections import Counter

from components import matrix
from components.matrix import Peer, Role
from components.settings import Settings

# AWS VPC User Guide, "Amazon VPC quotas": "Inbound or outbound rules per security group: 60. ... This quota
# is enforced separately for IPv4 rules and IPv6 rules." A referenced security group counts as one rule.
AWS_RULES_PER_GROUP = 60
# Hetzner Cloud API, Firewalls: a firewall holds at most 50 rules; Hetzner Docs, Firewalls FAQ: "Have up to 500
# (effective) rules per Firewall", a rule counting once per address it names.
HCLOUD_RULES_PER_FIREWALL = 50
HCLOUD_EFFECTIVE_RULES = 500

# Route 53 API, ResourceRecord: a record's Value holds 4,000 characters; the SPF record names every sending address.
SPF_LONGEST = 4000

# The key that lists each peer's addresses, so a message says what to change.
PEER_KEYS = {
    Peer.PING8: "ping8Cidrs",
    Peer.TRUSTED: "trustedCidrs",
    Peer.RESOLVER: "resolverCidrs",
    Peer.TIME: "ntpCidrs",
    Peer.MONITORING: "monitoringCidrs",
    Peer.ADMIN: "adminCidrs",
    Peer.DEPLOY: "deployCidrs",
    Peer.INTERNET: "packageEgress",
    Peer.RECIPIENT_MX: "ipv6",
}


def check(settings: Settings) -> list[str]:
    """`<key>: <reason>` lines; empty when the clouds take every rule."""
    problems = []
    for role in Role:
        rules = matrix.rules(role, settings)
        problems += _duplicates(role, rules)
        if settings.cloud == "aws":
            problems += _aws_quota(role, rules)
    if settings.cloud == "hcloud":
        # Imported here: the Hetzner backend pulls in its provider SDK, which AWS stacks never need.
        from components.hcloud import firewall_rules

        for role in Role:
            rules = firewall_rules(role, settings)
            if len(rules) > HCLOUD_RULES_PER_FIREWALL:
                problems.append(
                    f"hcloud: the {role} firewall would need {len(rules)} rules; Hetzner allows "
                    f"{HCLOUD_RULES_PER_FIREWALL} per firewall"
                )
            effective = sum(len(r.get("source_ips") or r.get("destination_ips") or [None]) for r in rules)
            if effective > HCLOUD_EFFECTIVE_RULES:
                problems.append(
                    f"hcloud: the {role} firewall would hold {effective} effective rules (one per address of each "
                    f"rule); Hetzner allows {HCLOUD_EFFECTIVE_RULES} per firewall (Firewalls FAQ); merge networks "
                    "into wider ranges"
                )
    return list(dict.fromkeys([*problems, *_spf(settings)]))


def _spf(settings: Settings) -> list[str]:
    """The signing domain's SPF at its longest: every proxy's IPv4 (and IPv6) address written out in full."""
    if not settings.spf.publish:
        return []
    proxies = len(settings.proxy_hosts)
    longest = len("v=spf1 -all") + sum(len(term) + 1 for term in settings.spf.include)
    longest += proxies * (len(" ip4:255.255.255.255") + (len(" ip6:") + 39 if settings.ipv6 else 0))
    if longest <= SPF_LONGEST:
        return []
    return [
        (
            f"proxyHosts: the SPF record of {proxies} proxies could be {longest} characters, over the {SPF_LONGEST} "
            "a DNS record value holds on Route53; set spf.publish: false and publish it yourself with include: records"
        )
    ]


def _duplicates(role: Role, rules: list[matrix.Rule]) -> list[str]:
    """The same rule from two rows (one network in ping8Cidrs and trustedCidrs, say): AWS refuses the second
    as a duplicate permission (EC2 API error InvalidPermission.Duplicate)."""
    seen: dict[tuple, matrix.Rule] = {}
    out = []
    for rule in rules:
        key = (rule.row.direction, rule.protocol, rule.port, rule.cidr if rule.group is None else rule.group)
        first = seen.setdefault(key, rule)
        if first is not rule:
            out.append(
                f"{PEER_KEYS.get(rule.row.peer, rule.row.peer.value)}: {rule.cidr} is already allowed "
                f"{rule.row.direction} on {rule.port}/{rule.protocol} for the {role} hosts by "
                f"{PEER_KEYS.get(first.row.peer, first.row.peer.value)}; list it once"
            )
    return out


def _aws_quota(role: Role, rules: list[matrix.Rule]) -> list[str]:
    out = []
    for direction in ("in", "out"):
        for version in (4, 6):
            chosen = [
                r for r in rules if r.row.direction == direction and (r.group is not None or r.cidr.version == version)
            ]
            if version == 6 and not any(r.group is None and r.cidr.version == 6 for r in chosen):
                continue
            if len(chosen) > AWS_RULES_PER_GROUP:
                biggest = Counter(r.row.peer for r in chosen if r.group is None).most_common(1)[0][0]
                out.append(
                    f"{PEER_KEYS.get(biggest, biggest.value)}: the {role} security group would hold {len(chosen)} "
                    f"{'inbound' if direction == 'in' else 'outbound'} IPv{version} rules; AWS allows "
                    f"{AWS_RULES_PER_GROUP} per direction (VPC quotas); merge networks into wider ranges"
                )
    return out
