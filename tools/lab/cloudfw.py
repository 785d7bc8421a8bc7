"""Each cloud's firewall as the router enforces it: nftables from the registered rules, per host.

AWS security groups (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html):
stateful, allow-only, a referenced group matches the private addresses of its members' network
interfaces, no egress unless a rule says so (pulumi-aws removes the allow-all egress AWS adds
to a new group), and never applied to the Amazon DNS server, instance metadata or Amazon Time
Sync. They filter at the network interface, so also between two hosts of one subnet.

Hetzner Cloud firewalls (https://docs.hetzner.com/cloud/firewalls/overview/): stateful, inbound
blocked unless a rule allows it, outbound allowed unless the server's firewalls have an out-rule,
applied to the public interface only: the private network is not filtered.

The router hands each host's interface to a chain of its own: `out_<n>` for what the host
sends, `in_<n>` for what it receives. A chain `return`s what a rule allows and drops the rest,
so a packet between two hosts must pass the sender's egress and the receiver's ingress.
"""

from collections.abc import Mapping, Sequence

from tools.lab.stack import CloudRule, Plan

# Never filtered by security groups (the page above); 169.254.169.123 is Amazon Time Sync.
AWS_UNFILTERED = ("169.254.169.253", "169.254.169.254", "169.254.169.123")
HCLOUD_UNFILTERED = ("169.254.169.254",)


def ruleset(plan: Plan, interfaces: Mapping[str, str], unfiltered: Sequence[str]) -> str:
    """The router's `inet cloud` table; `interfaces` maps each host label to its filtered interface."""
    members = _members(plan)
    sets, chains, jumps = [], [], []
    for group, addresses in sorted(members.items()):
        sets.append(
            f"    set g_{_id(group)} {{\n        type ipv4_addr\n        elements = {{ {', '.join(addresses)} }}\n    }}"
        )
    for n, host in enumerate(plan.hosts):
        iface = interfaces[host.label]
        rules = [r for r in plan.rules if r.guard in host.guards]
        outs = [r for r in rules if r.direction == "out"]
        default_out = plan.cloud == "hcloud" and not outs
        chains.append(_chain(f"in_{n}", host.label, [r for r in rules if r.direction == "in"], "saddr", members, False))
        chains.append(_chain(f"out_{n}", host.label, outs, "daddr", members, default_out))
        jumps.append(f'        iifname "{iface}" jump out_{n} comment "{host.label} sends"')
        jumps.append(f'        oifname "{iface}" jump in_{n} comment "{host.label} receives"')
    exempt = ", ".join(unfiltered)
    body = "\n".join(
        [
            "table inet cloud {",
            *sets,
            "    chain forward {",
            "        type filter hook forward priority filter; policy accept;",
            "        ct state established,related accept",
            f'        ip daddr {{ {exempt} }} accept comment "cloud services no firewall filters"',
            *jumps,
            "    }",
            *chains,
            "}",
        ]
    )
    return body + "\n"


def _members(plan: Plan) -> dict[str, list[str]]:
    """Security group -> the private addresses of the interfaces in it (AWS only refers to groups)."""
    out: dict[str, list[str]] = {}
    for host in plan.hosts:
        for guard in host.guards:
            out.setdefault(guard, []).append(host.private_ip)
    return out


def _chain(
    name: str, label: str, rules: list[CloudRule], where: str, members: dict[str, list[str]], allow_all: bool
) -> str:
    lines = [f"    chain {name} {{", f'        comment "{label}"']
    if allow_all:
        lines.append('        return comment "no out-rule: Hetzner allows all outbound"')
    for rule in rules:
        match = _match(rule, where, members)
        if match is not None:
            lines.append(f'        {match} return comment "{rule.name}"')
    lines += ["        drop", "    }"]
    return "\n".join(lines)


def _match(rule: CloudRule, where: str, members: dict[str, list[str]]) -> str | None:
    """One rule as an nft match, or None for what this IPv4 lab doesn't carry (IPv6 peers, empty groups)."""
    if rule.peer_group is not None:
        if not members.get(rule.peer_group):
            return None
        peer = f"ip {where} @g_{_id(rule.peer_group)}"
    elif rule.peer is None or ":" in rule.peer:
        return None
    else:
        peer = f"ip {where} {rule.peer}"
    if rule.protocol == "all":
        return peer
    if rule.ports is None:
        return f"{peer} meta l4proto {rule.protocol}"
    low, high = rule.ports
    ports = str(low) if low == high else f"{low}-{high}"
    return f"{peer} {rule.protocol} dport {ports}"


def _id(guard: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in guard)
