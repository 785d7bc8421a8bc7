"""Assemble the stack: one site for the chosen cloud, then the proxies, then the MTAs.

Proxies come first because each MTA's first-boot configuration names them by IP literal.
"""

import pulumi
import pulumi_random as random

from components.aws import AwsSite
from components.bootstrap import ProxyTarget, mta_user_data, proxy_user_data
from components.dns import HcloudZone, Route53Zone
from components.hcloud import HcloudSite
from components.hosts import HostArgs, MtaHost, ProxyHost
from components.matrix import Role
from components.settings import Settings


def inject_token(settings: Settings) -> pulumi.Output[str]:
    """The bearer token of the injection endpoint: `kumomta:injectToken` if given, else generated once."""
    if settings.inject_token is not None:
        return pulumi.Output.secret(settings.inject_token.get_secret_value())
    # Letters and digits only, so it is a valid bearer token and an Nginx map key as it is. The engine
    # already treats `result` as secret; saying so here keeps it secret wherever it flows, mocks included.
    return pulumi.Output.secret(random.RandomPassword("inject-token", length=48, special=False).result)


def build(settings: Settings, token: pulumi.Output[str]) -> dict[str, MtaHost | ProxyHost]:
    """Declare every resource of the stack; return the hosts by label."""
    site = HcloudSite("hcloud", settings) if settings.cloud == "hcloud" else AwsSite("aws", settings)
    zone = HcloudZone(settings.dns) if settings.dns.provider == "hcloud" else Route53Zone(settings.dns)
    # The MTA subnet, not MTA addresses: proxies are built first, and SOCKS5 stays inside the network.
    mta_sources = site.network.subnet_cidrs[Role.MTA]
    hosts: dict[str, MtaHost | ProxyHost] = {}
    proxies: list[pulumi.Output[ProxyTarget]] = []
    for label in settings.proxy_hosts:
        user_data = mta_sources.apply(lambda cidr, label=label: proxy_user_data(settings, label, [cidr]))
        proxy = ProxyHost(label, HostArgs(settings.fqdn(label), site, zone, user_data))
        hosts[label] = proxy
        proxies.append(_target(settings, proxy))
    channel = site.token_channel(token)
    for label in settings.mta_hosts:
        user_data = pulumi.Output.all(channel, *proxies).apply(
            lambda args, label=label: mta_user_data(settings, label, args[1:], args[0])
        )
        hosts[label] = MtaHost(label, HostArgs(settings.fqdn(label), site, zone, user_data))
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


def _target(settings: Settings, proxy: ProxyHost) -> pulumi.Output[ProxyTarget]:
    """The MTAs reach a proxy on its private address; it sends from the addresses on its interface:
    the private IPv4 on AWS (the Elastic IP is NAT in front of it), the public one on Hetzner, and with
    `ipv6` its IPv6 address, public on both clouds."""
    source = proxy.private_ip if settings.cloud == "aws" else proxy.public_ip
    return pulumi.Output.all(proxy.fqdn, proxy.private_ip, source, proxy.public_ipv6).apply(lambda a: ProxyTarget(*a))
