"""DNS records: the hosts' forward records, and the TXT records of sending authentication (DKIM, SPF, DMARC).

The zone provider is independent of the cloud: Hetzner hosts may keep their names in Route53. A record
the stack publishes never silently replaces one made elsewhere: Route53 refuses to create a record set
that exists (`allowOverwrite` stays false) and Hetzner refuses a second RRSet of a name and type.
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

    def txt(self, parent: pulumi.Resource, name: str, fqdn: str, text: pulumi.Input[str]) -> pulumi.Resource:
        """One TXT record holding `text`, split into strings of at most 255 characters (RFC 1035 3.3.14)."""
        ...


def strings(text: str) -> list[str]:
    """A TXT value as the character-strings DNS carries: at most 255 characters each (RFC 1035 section 3.3)."""
    return [text[i : i + 255] for i in range(0, len(text), 255)] or [""]


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

    def txt(self, parent: pulumi.Resource, name: str, fqdn: str, text: pulumi.Input[str]) -> pulumi.Resource:
        # pulumi-aws route53.Record: a value longer than 255 characters is written as its strings joined by `""`
        # ("first255characters\"\"morecharacters"); the provider quotes the whole.
        return aws.route53.Record(
            name,
            zone_id=self.zone_id,
            name=fqdn,
            type="TXT",
            ttl=TTL,
            records=[pulumi.Output.from_input(text).apply(lambda t: '""'.join(strings(t)))],
            allow_overwrite=False,
            opts=pulumi.ResourceOptions(parent=parent),
        )


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

    def txt(self, parent: pulumi.Resource, name: str, fqdn: str, text: pulumi.Input[str]) -> pulumi.Resource:
        # Hetzner DNS takes a TXT value as its quoted character-strings, as in a zone file (RFC 1035 5.1).
        return hcloud.ZoneRrset(
            name,
            zone=self.zone,
            name=_relative(fqdn, self.origin),
            type="TXT",
            ttl=TTL,
            records=[{"value": pulumi.Output.from_input(text).apply(lambda t: " ".join(f'"{p}"' for p in strings(t)))}],
            opts=pulumi.ResourceOptions(parent=parent),
        )


def _relative(fqdn: str, origin: str) -> str:
    """RRSet names are relative to the zone; settings make sure the zone holds the FQDN."""
    return "@" if fqdn == origin else fqdn.removesuffix(f".{origin}")
