"""Assemble the stack: one site for the chosen cloud, then the proxies, then the MTAs.

Proxies come first because each MTA's configuration names them by IP literal.
"""

import pulumi
import pulumi_random as random

from components.aws import AwsSite
from components.bootstrap import ProxyTarget, mta_bundle, nginx, proxy_bundle
from components.dns import HcloudZone, Route53Zone
from components.hcloud import HcloudSite
from components.hosts import HostArgs, MtaHost, ProxyHost
from components.mail import MailArgs, SendingAuth
from components.matrix import Role
from components.settings import Settings


def inject_token(settings: Settings) -> pulumi.Output[str]:
    """The bearer token of the injection endpoint: `kumomta:injectToken` if given, else generated once."""
    if settings.inject_token is not None:
        return pulumi.Output.secret(settings.inject_token.get_secret_value())
    # Letters and digits only, so it is a valid bearer token and an Nginx map key as it is. The engine
    # already treats `result` as secret; saying so here keeps it secret wherever it flows, mocks included.
    return pulumi.Output.secret(random.RandomPassword("inject-token", length=48, special=False).result)


def build(settings: Settings, token: pulumi.Output[str]) -> tuple[dict[str, MtaHost | ProxyHost], SendingAuth]:
    """Declare every resource of the stack; return the hosts by label, and the sending authentication."""
    site = HcloudSite("hcloud", settings) if settings.cloud == "hcloud" else AwsSite("aws", settings)
    zone = HcloudZone(settings.dns) if settings.dns.provider == "hcloud" else Route53Zone(settings.dns)
    # Each role's firewall names the other role's subnet, not its hosts, so it does not change with the fleet.
    subnets = site.network.subnet_cidrs
    hosts: dict[str, MtaHost | ProxyHost] = {}
    proxies: list[pulumi.Output[ProxyTarget]] = []
    for label in settings.proxy_hosts:
        bundle = subnets[Role.MTA].apply(lambda cidr, label=label: proxy_bundle(settings, label, cidr))
        proxy = ProxyHost(label, HostArgs(settings.fqdn(label), site, zone, bundle), _renamed(settings, label))
        hosts[label] = proxy
        proxies.append(_target(settings, proxy))
    mail = SendingAuth(
        "sending", MailArgs(settings, site, zone, {label: hosts[label] for label in settings.proxy_hosts})
    )
    bearer_map = site.secret(
        "bearer-map", token.apply(nginx.token_map_line), "Nginx bearer map of the KumoMTA injection token (the MTAs)"
    )
    for label in settings.mta_hosts:
        bundle = pulumi.Output.all(subnets[Role.PROXY], bearer_map, mail.keys, *proxies).apply(
            lambda a, label=label: mta_bundle(settings, label, a[0], a[3:], a[1], a[2])
        )
        hosts[label] = MtaHost(label, HostArgs(settings.fqdn(label), site, zone, bundle), _renamed(settings, label))
    return hosts, mail


def outputs(hosts: dict[str, MtaHost | ProxyHost]) -> dict[str, dict[str, pulumi.Output]]:
    """Per host: what operators and `make verify` need to find it, and the configuration version it should run."""
    return {
        label: {
            "role": host.role.value,
            "fqdn": host.fqdn,
            "publicIp": host.public_ip,
            "publicIpv6": host.public_ipv6,  # None without `ipv6`; a proxy sends from it (SPF, PTR)
            "privateIp": host.private_ip,
            "instanceId": host.instance_id,
            "configVersion": host.config_version,
        }
        for label, host in hosts.items()
    }


def _renamed(settings: Settings, label: str) -> pulumi.ResourceOptions | None:
    """A renamed host answers to its first name, and so do its parts named after it (`<label>-eip`): Pulumi
    aliases a child whose name starts with its parent's by the parent's aliases, so nothing is replaced."""
    first = settings.first_label(label)
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=first)]) if first != label else None


def _target(settings: Settings, proxy: ProxyHost) -> pulumi.Output[ProxyTarget]:
    """The MTAs reach a proxy on its private address; it sends from the addresses on its interface:
    the private IPv4 on AWS (the Elastic IP is NAT in front of it), the public one on Hetzner, and with
    `ipv6` its IPv6 address, public on both clouds."""
    source = proxy.private_ip if settings.cloud == "aws" else proxy.public_ip
    return pulumi.Output.all(proxy.fqdn, proxy.private_ip, source, proxy.public_ipv6).apply(lambda a: ProxyTarget(*a))
