"""Forward DNS records for the hosts.

The zone provider is independent of the cloud: Hetzner hosts may keep their names in Route53.
"""

from typing import TYPE_CHECKING, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_hcloud as hcloud

from components.settings import HcloudDns, Route53Dns

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


class HcloudZone:
    """A and AAAA RRSets in a Hetzner DNS zone.

    An existing zone is looked up, so a missing one fails the preview rather than the first record.
    With `create: true` the zone is made here and protected, because it will soon hold the domain's
    MX, SPF and DKIM records as well.
    """

    def __init__(self, config: HcloudDns):
        self.origin = config.zone
        if config.create:
            zone = hcloud.Zone(
                "dns-zone",
                name=config.zone,
                mode="primary",
                delete_protection=True,
                opts=pulumi.ResourceOptions(protect=True),
            )
            self.zone = zone.name
        else:
            self.zone = hcloud.get_zone_output(name=config.zone).name

    def records(self, host: pulumi.Resource, name: str, fqdn: str, machine: "Machine") -> list[pulumi.Resource]:
        addresses = {"A": machine.public_ipv4, "AAAA": machine.public_ipv6}
        return [
            hcloud.ZoneRrset(
                f"{name}-{kind.lower()}",
                zone=self.zone,
                name=_relative(fqdn, self.origin),
                type=kind,
                ttl=TTL,
                records=[{"value": address}],
                opts=pulumi.ResourceOptions(parent=host),
            )
            for kind, address in addresses.items()
            if address is not None
        ]


def _relative(fqdn: str, origin: str) -> str:
    """RRSet names are relative to the zone; settings make sure the zone holds the FQDN."""
    return "@" if fqdn == origin else fqdn.removesuffix(f".{origin}")
