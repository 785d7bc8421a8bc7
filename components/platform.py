"""Assemble the stack: one site for the chosen cloud, then the proxies, then the MTAs.

Proxies come first because each MTA's first-boot configuration names them by IP literal.
"""

import pulumi

from components.aws import AwsSite
from components.dns import HcloudZone, Route53Zone
from components.hcloud import HcloudSite
from components.hosts import HostArgs, MtaHost, ProxyHost
from components.settings import Settings


def build(settings: Settings) -> dict[str, MtaHost | ProxyHost]:
    """Declare every resource of the stack; return the hosts by label."""
    site = HcloudSite("hcloud", settings) if settings.cloud == "hcloud" else AwsSite("aws", settings)
    zone = HcloudZone(settings.dns) if settings.dns.provider == "hcloud" else Route53Zone(settings.dns)
    hosts: dict[str, MtaHost | ProxyHost] = {}
    for label in settings.proxy_hosts:
        fqdn = settings.fqdn(label)
        hosts[label] = ProxyHost(label, HostArgs(fqdn, site, zone, _first_boot(fqdn)))
    for label in settings.mta_hosts:
        fqdn = settings.fqdn(label)
        hosts[label] = MtaHost(label, HostArgs(fqdn, site, zone, _first_boot(fqdn)))
    return hosts


def outputs(hosts: dict[str, MtaHost | ProxyHost]) -> dict[str, dict[str, pulumi.Output]]:
    """Per host: what operators and `make verify` need to find it."""
    return {
        label: {
            "role": host.role.value,
            "fqdn": host.fqdn,
            "publicIp": host.public_ip,
            "privateIp": host.private_ip,
            "instanceId": host.instance_id,
        }
        for label, host in hosts.items()
    }


def _first_boot(fqdn: str) -> str:
    return f"#cloud-config\nfqdn: {fqdn}\nprefer_fqdn_over_hostname: true\n"
