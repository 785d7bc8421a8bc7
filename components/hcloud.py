"""Hetzner Cloud backend: a private network with a subnet per role, a cloud firewall per role built
from the matrix, and per host protected primary IPs with their PTRs, a server and, for the MTA, a
protected spool volume.

Each server gets its firewall, its primary IPs and its private network in the create call, so it
never boots unfiltered or on a throw-away address. SOCKS5 (5000) runs over the private network,
which Hetzner's cloud firewalls do not filter: host-group rows of the matrix make no cloud rule
here, and the proxy's host firewall limits 5000 to the MTA subnet.
"""

import ipaddress

import pulumi
import pulumi_hcloud as hcloud

from components import matrix
from components.bootstrap import InlineToken
from components.hosts import Machine, ownership
from components.matrix import Role
from components.settings import Settings

# The address list a Hetzner rule filters on, by direction.
_ADDRESSES = {"in": "source_ips", "out": "destination_ips"}


class HcloudNetwork(pulumi.ComponentResource):
    """One private network with a subnet per role, in the network zone of the configured location."""

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:hcloud:Network", name, None, opts)
        conf = settings.hcloud
        network = hcloud.Network(
            "network",
            name=_unique_name("network"),
            ip_range=str(conf.network_cidr),
            labels=ownership(None),
            opts=pulumi.ResourceOptions(parent=self),
        )
        cidrs = {Role.MTA: conf.mta_subnet_cidr, Role.PROXY: conf.proxy_subnet_cidr}
        subnets = {
            role: hcloud.NetworkSubnet(
                f"{role}-subnet",
                network_id=_numeric(network.id),
                type="cloud",
                network_zone=conf.network_zone,
                ip_range=str(cidrs[role]),
                opts=pulumi.ResourceOptions(parent=network),
            )
            for role in Role
        }
        self.network_id = network.id
        self.subnet_ids = {role: subnet.id for role, subnet in subnets.items()}
        self.subnet_cidrs = {role: pulumi.Output.from_input(str(cidr)) for role, cidr in cidrs.items()}
        self.register_outputs({"networkId": self.network_id, "subnetIds": self.subnet_ids})


class HcloudFirewalls(pulumi.ComponentResource):
    """One cloud firewall per role holding exactly the matrix's public rules, inbound and outbound.

    Hetzner allows all outbound traffic until a firewall has an out-rule. Every role has some (DNS
    at least), so outbound is default-deny as on AWS.
    """

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:hcloud:Firewalls", name, None, opts)
        firewalls = {
            role: hcloud.Firewall(
                f"{role}-firewall",
                name=_unique_name(role.value),
                rules=firewall_rules(role, settings),
                labels=ownership(role),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for role in Role
        }
        self.firewall_ids = {role: firewall.id for role, firewall in firewalls.items()}
        self.register_outputs({"firewallIds": self.firewall_ids})


class HcloudSite(pulumi.ComponentResource):
    """Everything hosts share on Hetzner Cloud, and the builder of their per-host parts."""

    def __init__(self, name: str, settings: Settings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:hcloud:Site", name, None, opts)
        self.settings = settings
        child = pulumi.ResourceOptions(parent=self)
        self.network = HcloudNetwork("network", settings, child)
        self.firewalls = HcloudFirewalls("firewalls", settings, child)
        self.register_outputs({"networkId": self.network.network_id})

    def machine(self, host, name: str, role: Role, fqdn: str, user_data) -> Machine:
        conf = self.settings.hcloud
        ipv4 = self._primary_ip(host, name, role, "ipv4")
        ipv6 = self._primary_ip(host, name, role, "ipv6") if self.settings.ipv6 else None
        server = hcloud.Server(
            f"{name}-server",
            name=fqdn,
            server_type=conf.mta_server_type if role == Role.MTA else conf.proxy_server_type,
            image=conf.image,
            location=conf.location,
            backups=conf.backups,
            delete_protection=conf.delete_protection,
            rebuild_protection=conf.delete_protection,
            # In the create call, so the firewall filters from first boot (an attachment may come later).
            firewall_ids=[_numeric(self.firewalls.firewall_ids[role])],
            public_nets=[
                {
                    "ipv4_enabled": True,
                    "ipv4": _numeric(ipv4.id),
                    "ipv6_enabled": ipv6 is not None,
                    "ipv6": _numeric(ipv6.id) if ipv6 is not None else None,
                }
            ],
            # An empty alias list keeps the provider from detaching and re-attaching on every update.
            networks=[{"subnet_id": self.network.subnet_ids[role], "alias_ips": []}],
            ssh_keys=conf.ssh_keys or None,
            user_data=user_data,
            # Lets kumod flush its queues to the spool before the server goes.
            shutdown_before_deletion=True,
            labels=ownership(role),
            opts=pulumi.ResourceOptions(
                parent=host,
                # A new image or bootstrap must not replace a running host; cloud-init runs once anyway.
                # SSH keys only apply at creation, and changing them would replace the server too.
                ignore_changes=["image", "userData", "sshKeys"],
                # The primary IPs and the server name belong to one server at a time.
                delete_before_replace=True,
            ),
        )
        return Machine(
            public_ipv4=ipv4.ip_address,
            public_ipv6=ipv6.ip_network.apply(_first_address) if ipv6 is not None else None,
            private_ip=server.networks.apply(lambda networks: networks[0].ip),
            instance_id=server.id,
            sending_ip=ipv4,
            sending_ipv6=ipv6,
        )

    def token_channel(self, token: pulumi.Output[str]) -> pulumi.Output[InlineToken]:
        """Hetzner has no secret store a server can read with an identity: user data is the only channel."""
        return token.apply(InlineToken)

    def ptr(self, host, name: str, machine: Machine, fqdn: str, after: list[pulumi.Resource]) -> None:
        # On the primary IP, not the server, so the PTR outlives a server replacement.
        addresses = [(f"{name}-ptr", machine.sending_ip, machine.public_ipv4)]
        if machine.sending_ipv6 is not None:
            addresses.append((f"{name}-ptr-v6", machine.sending_ipv6, machine.public_ipv6))
        for resource_name, primary_ip, address in addresses:
            hcloud.Rdns(
                resource_name,
                primary_ip_id=_numeric(primary_ip.id),
                ip_address=address,
                dns_ptr=fqdn,
                opts=pulumi.ResourceOptions(parent=host, depends_on=after),
            )

    def spool(self, host, name: str, machine: Machine) -> hcloud.Volume:
        conf = self.settings.hcloud
        volume = hcloud.Volume(
            f"{name}-spool",
            name=_unique_name(f"{name}-spool"),
            size=conf.spool_volume_gb,
            location=conf.location,
            format="ext4",
            delete_protection=conf.delete_protection,
            labels=ownership(Role.MTA),
            # Queued mail lives here; it must outlive the server and the stack.
            opts=pulumi.ResourceOptions(parent=host, protect=True, retain_on_delete=True),
        )
        hcloud.VolumeAttachment(
            f"{name}-spool-attach",
            volume_id=_numeric(volume.id),
            server_id=_numeric(machine.instance_id),
            # The bootstrap mounts it at /var/spool/kumomta, not Hetzner's /mnt/HC_Volume_<id>.
            automount=False,
            # Under the host, not the protected volume: a replaced server needs a new attachment.
            opts=pulumi.ResourceOptions(parent=host),
        )
        return volume

    def _primary_ip(self, host, name: str, role: Role, family: str) -> hcloud.PrimaryIp:
        return hcloud.PrimaryIp(
            f"{name}-{family}",
            name=_unique_name(f"{name}-{family}"),
            type=family,
            assignee_type="server",
            auto_delete=False,
            location=self.settings.hcloud.location,
            delete_protection=self.settings.hcloud.delete_protection,
            labels=ownership(role),
            # The sending reputation lives on this address: never release it with the server or the stack.
            opts=pulumi.ResourceOptions(parent=host, protect=True, retain_on_delete=True),
        )


def firewall_rules(role: Role, settings: Settings) -> list[dict]:
    """The matrix rules of a role as Hetzner rules: one per row and protocol, holding all its addresses.

    Settings keep each address list within Hetzner's 100 per rule, so a role never comes near the
    50 rules a firewall may hold.
    """
    grouped: dict[tuple, list[str]] = {}
    for rule in matrix.rules(role, settings):
        if rule.group is not None:
            continue  # host groups meet on the private network, which cloud firewalls do not see
        grouped.setdefault((rule.row, rule.protocol, rule.port), []).append(str(rule.cidr))
    return [
        {
            "direction": row.direction,
            "protocol": protocol,
            "port": str(port),
            _ADDRESSES[row.direction]: addresses,
            "description": row.purpose,
        }
        for (row, protocol, port), addresses in grouped.items()
    ]


def _numeric(resource_id: pulumi.Output[str]) -> pulumi.Output[int]:
    """Pulumi carries resource IDs as strings; the Hetzner API takes integers."""
    return resource_id.apply(int)


def _unique_name(name: str) -> str:
    """Hetzner names are unique per project, so they carry the stack."""
    return f"{pulumi.get_stack()}-{name}"


def _first_address(network: str) -> str:
    """Hetzner servers take the first address (::1) of their primary IPv6 /64."""
    return str(ipaddress.ip_network(network)[1])
