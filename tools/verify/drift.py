"""The drift audit: live firewalls against the matrix table, plus each host's IMDS mode and sending IP.

It answers "has anyone clicked a rule into the console since the last `up`?" without waiting
for a `pulumi refresh`: every rule the matrix wants and the cloud lacks is reported as
missing, every rule the cloud has and the matrix doesn't as extra, in the guide's words.
"""

from types import ModuleType

from components import matrix
from components.matrix import Role
from components.settings import Settings
from tools.verify import live_aws, live_hcloud
from tools.verify.checks import Result, Task, Unavailable, failed, passed, skipped
from tools.verify.live import ApiFailure, Firewall, LiveRule, expected
from tools.verify.stack import Stack

GROUP = "drift"


def wanted(role: Role, settings: Settings) -> set[LiveRule]:
    """The matrix rules a role's cloud firewall must hold.

    On Hetzner the host-group paths (SOCKS5 between MTAs and proxies) run over the private
    network, which cloud firewalls don't filter, so those rules live only in the host firewall.
    """
    rules = matrix.rules(role, settings)
    if settings.cloud == "hcloud":
        rules = [rule for rule in rules if rule.group is None]
    return {expected(rule) for rule in rules}


def differences(role: Role, want: set[LiveRule], have: frozenset[LiveRule]) -> list[str]:
    missing = [f"missing: {rule.describe()} on {role}" for rule in sorted(want - have)]
    return missing + [f"extra: {rule.describe()} on {role}" for rule in sorted(have - want)]


def tasks(stack: Stack, timeout: float) -> list[Task]:
    cloud: ModuleType = live_aws if stack.settings.cloud == "aws" else live_hcloud

    def firewall_rows() -> list[Result]:
        names = [_firewall_check(role) for role in Role]
        try:
            found = cloud.firewalls(cloud.connect(stack, timeout), stack)
        except Unavailable as err:
            return [skipped(GROUP, name, str(err)) for name in names]
        except ApiFailure as err:
            return [failed(GROUP, name, str(err)) for name in names]
        return [_compare(stack, role, found.get(role, []), cloud) for role in Role]

    def host_rows() -> list[Result]:
        try:
            return cloud.hosts(cloud.connect(stack, timeout), stack)
        except Unavailable as err:
            return [skipped(GROUP, name, str(err)) for name in cloud.host_checks(stack)]
        except ApiFailure as err:
            return [failed(GROUP, name, str(err)) for name in cloud.host_checks(stack)]

    return [Task(GROUP, "firewalls", firewall_rows), Task(GROUP, "hosts", host_rows)]


def _compare(stack: Stack, role: Role, found: list[Firewall], cloud: ModuleType) -> Result:
    check = _firewall_check(role)
    if not found:
        return failed(GROUP, check, f"no {cloud.KIND} with {cloud.selector(stack, role)} (deleted, or relabelled?)")
    if len(found) > 1:
        idents = ", ".join(f.ident for f in found)
        return failed(GROUP, check, f"{len(found)} {cloud.KIND}s with {cloud.selector(stack, role)}: {idents}")
    (firewall,) = found
    diff = differences(role, wanted(role, stack.settings), firewall.rules)
    if diff:
        return failed(GROUP, check, f"{firewall.ident}: {len(diff)} differences from the matrix", tuple(diff))
    return passed(GROUP, check, f"{firewall.ident}: {len(firewall.rules)} rules, as the matrix says")


def _firewall_check(role: Role) -> str:
    return f"{role} firewall matches the matrix"
