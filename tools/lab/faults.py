"""Planted faults: each breaks one thing in a running lab, and names the checks that must then fail.

They show that the lab can fail, the way a bad change to the rendered files or the registered
rules would: a rule missing from a host's ruleset, a cloud firewall rule widened, Nginx
forwarding an admin path, the resolver unreachable. `plant` returns the undo.
"""

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from components.matrix import Role
from tools.lab.lab import Lab
from tools.lab.stack import CloudRule


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    plant: Callable[[Lab], Callable[[], None]]
    fails: Callable[[Lab], list[str]]
    """Check names (exact rows) that must fail while it is planted."""
    groups: tuple[str, ...]


def _host_rule_missing(lab: Lab) -> Callable[[], None]:
    proxy = lab.plan.of_role(Role.PROXY)[0]
    rendered = _ruleset(lab, proxy.label)
    broken = "\n".join(line for line in rendered.splitlines() if not re.search(r"tcp dport 5000 accept", line))
    if broken == rendered.rstrip("\n"):
        raise ValueError(f"{proxy.label}: no 5000 accept in the rendered ruleset to remove")
    lab.load_host_firewall(proxy.label, broken + "\n")
    return lambda: lab.load_host_firewall(proxy.label)


def _ruleset(lab: Lab, label: str) -> str:
    from tools.lab.topology import host_firewall

    return host_firewall(lab.plan.host(label))


def _cloud_rule_widened(lab: Lab) -> Callable[[], None]:
    """The MTA's 443 rule from the PING8 app, opened to the whole internet."""
    mta = lab.plan.of_role(Role.MTA)[0]
    ping8 = {str(c) for c in lab.plan.settings.ping8_cidrs}

    def widen(rule: CloudRule) -> CloudRule:
        if rule.guard in mta.guards and rule.direction == "in" and rule.ports == (443, 443) and rule.peer in ping8:
            return dataclasses.replace(rule, peer="0.0.0.0/0", name=f"{rule.name} (widened)")
        return rule

    lab.load_cloud_firewall(dataclasses.replace(lab.plan, rules=tuple(widen(r) for r in lab.plan.rules)))
    return lab.load_cloud_firewall


def _nginx_admin_path(lab: Lab) -> Callable[[], None]:
    mta = lab.plan.of_role(Role.MTA)[0]
    path = "/etc/nginx/conf.d/kumomta.conf"
    rendered = mta.files[path].content
    upstream = re.search(r"proxy_pass http://([^/;]+)", rendered).group(1)
    leak = f"    location /api/admin/ {{\n        proxy_pass http://{upstream};\n    }}\n\n    location / {{"
    broken = rendered.replace("    location / {\n        return 404;", leak + "\n        return 404;", 1)
    if broken == rendered:
        raise ValueError("the rendered site has no `location /` to put the leak in front of")
    lab.write_host_file(mta.label, path, broken)
    lab.reload_nginx(mta.label)

    def undo() -> None:
        lab.write_host_file(mta.label, path, rendered)
        lab.reload_nginx(mta.label)

    return undo


def _resolver_unreachable(lab: Lab) -> Callable[[], None]:
    lab.block("resolver")
    return lambda: lab.block("resolver", on=False)


def _first(lab: Lab, role: Role) -> str:
    return lab.plan.of_role(role)[0].label


FAULTS = (
    Fault(
        "host-rule-missing",
        "the proxy's rendered ruleset without its 5000 accept",
        _host_rule_missing,
        lambda lab: [
            (
                f"from {_first(lab, Role.MTA)}, reach {lab.plan.of_role(Role.PROXY)[0].label} "
                f"(private {lab.plan.of_role(Role.PROXY)[0].private_ip}) on 5000"
            )
        ],
        ("matrix",),
    ),
    Fault(
        "cloud-rule-widened",
        "the MTA's 443 cloud rule from the PING8 app widened to 0.0.0.0/0",
        _cloud_rule_widened,
        lambda lab: [
            (
                f"[cloud firewall only] from internet, not reach {_first(lab, Role.MTA)} "
                f"(public {lab.plan.of_role(Role.MTA)[0].public_ip}) on 443"
            )
        ],
        ("matrix-cloud",),
    ),
    Fault(
        "nginx-admin-path",
        "Nginx forwarding /api/admin/ to kumod",
        _nginx_admin_path,
        lambda lab: [
            (
                f"from PING8 app, GET https://{lab.plan.of_role(Role.MTA)[0].fqdn}/api/admin/bounce/v1 "
                "with the token (admin path) gives 404"
            ),
            f"make verify: {_first(lab, Role.MTA)}: GET /api/admin/bounce/v1 gives 404",
        ],
        ("https", "verify"),
    ),
    Fault(
        "resolver-unreachable",
        "the resolver drops every packet",
        _resolver_unreachable,
        lambda lab: [
            f"{h.label}: resolves through {s} ({lab.hosts[h.label].resolvers_from})"
            for h in lab.plan.hosts
            for s in lab.hosts[h.label].resolvers
        ],
        ("resolver",),
    ),
)


def named(name: str) -> Fault:
    (fault,) = [f for f in FAULTS if f.name == name]
    return fault
