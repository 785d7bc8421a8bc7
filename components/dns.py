"""Forward DNS records for the hosts.

The zone provider is independent of the cloud: Hetzner hosts may keep their names in Route53.
"""

from typing import TYPE_CHECKING, Protocol

import pulumi
import pulumi_aws as aws

from components.settings import Route53Dns

if TYPE_CHECKING:
    from components.hosts import Machine

TTL = 300


class DnsZone(Protocol):
    def records(self, host: pulumi.Resource, name: str, fqdn: str, machine: "Machine") -> list[pulumi.Resource]: ...


class Route53Zone:
    """A and AAAA records in an existing Route53 hosted zone."""

    def __init__(self, config: Route53Dns):
        self.zone_id = config.zone_id

    def records(self, host: pulumi.Resource, name: str, fqdn: str, machine: "Machine") -> list[pulumi.Resource]:
        addresses = {"A": machine.public_ipv4, "AAAA": machine.public_ipv6}
        return [
            aws.route53.Record(
                f"{name}-{kind.lower()}",
                zone_id=self.zone_id,
                name=fqdn,
                type=kind,
                ttl=TTL,
                records=[address],
                opts=pulumi.ResourceOptions(parent=host),
            )
            for kind, address in addresses.items()
            if address is not None
        ]
