"""The live Hetzner side: cloud firewalls by label, and each host's primary IP.

Hetzner rules may carry up to 100 addresses each; every address becomes its own live rule, so
the audit doesn't depend on how the backend happened to group them.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import hcloud
import requests

from components.matrix import Role
from tools.verify import clouds
from tools.verify.checks import Result, failed, passed
from tools.verify.live import ApiFailure, Firewall, LiveRule, cidr
from tools.verify.stack import Host, Stack

GROUP = "drift"
KIND = "firewall"


def connect(stack: Stack, timeout: float) -> hcloud.Client:
    return clouds.hetzner(timeout)


def selector(stack: Stack, role: Role) -> str:
    return f"labels kumomta-stack={stack.name}, kumomta-role={role}"


def firewalls(client: hcloud.Client, stack: Stack) -> dict[Role, list[Firewall]]:
    roles = ",".join(role.value for role in Role)
    with _api():
        found = client.firewalls.get_all(label_selector=f"kumomta-stack={stack.name},kumomta-role in ({roles})")
    out: dict[Role, list[Firewall]] = {}
    for firewall in found:
        rules = frozenset(
            LiveRule(rule.direction, rule.protocol, rule.port or "all", cidr(address))
            for rule in firewall.rules
            for address in (rule.source_ips if rule.direction == "in" else rule.destination_ips)
        )
        role = Role(firewall.labels["kumomta-role"])
        out.setdefault(role, []).append(Firewall(f"{firewall.id} ({firewall.name})", rules))
    return out


def host_checks(stack: Stack) -> list[str]:
    return [_ip_check(host) for host in stack.hosts]


def hosts(client: hcloud.Client, stack: Stack) -> list[Result]:
    """Per host: its primary IP still assigned to its server (Hetzner has no IMDS token mode to check)."""
    rows = []
    for host in stack.hosts:
        with _api():
            found = client.primary_ips.get_list(ip=host.public_ip).primary_ips
        rows.append(_sending_ip(host, found[0] if found else None))
    return rows


def _sending_ip(host: Host, primary) -> Result:
    check = _ip_check(host)
    if primary is None:
        return failed(GROUP, check, f"{host.public_ip} is no primary IP of this project (deleted?)")
    if primary.assignee_id is None:
        return failed(GROUP, check, f"primary IP {primary.id} ({host.public_ip}) is assigned to nothing")
    if primary.assignee_type != "server" or str(primary.assignee_id) != host.instance_id:
        where = f"{primary.assignee_type} {primary.assignee_id}"
        return failed(GROUP, check, f"primary IP {primary.id} is assigned to {where}, not server {host.instance_id}")
    return passed(GROUP, check, f"primary IP {primary.id} on server {host.instance_id}")


def _ip_check(host: Host) -> str:
    return f"{host.label}: sending IP {host.public_ip} attached"


@contextmanager
def _api() -> Iterator[None]:
    try:
        yield
    except hcloud.APIException as err:
        raise ApiFailure(f"Hetzner API: {err.code}: {err.message}") from None
    except requests.RequestException as err:
        raise ApiFailure(f"Hetzner API: {err}") from None
