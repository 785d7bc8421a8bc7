"""The two kinds of host: MtaHost (KumoMTA behind Nginx) and ProxyHost (KumoProxy egress).

A host is the same thing on every cloud: a machine behind its role's firewall, a sending IP
that outlives the machine, a PTR and forward records for its FQDN and, for the MTA, a spool
volume that outlives the machine too. The cloud-specific parts come from a `Site`.
"""

from dataclasses import dataclass
from typing import Protocol

import pulumi

from components.bootstrap import Bundle, Secret
from components.dns import DnsZone
from components.matrix import Role


def ownership(role: Role | None) -> dict[str, str]:
    """The tags (AWS) or labels (Hetzner) that say which stack and role a resource belongs to.

    `make verify` finds the live firewalls by them, and the policy pack tells hosts apart by them.
    """
    out = {"kumomta-stack": pulumi.get_stack()}
    if role is not None:
        out["kumomta-role"] = role.value
    return out


@dataclass
class Machine:
    """What a host needs to know about the VM a site built for it."""

    public_ipv4: pulumi.Output[str]
    public_ipv6: pulumi.Output[str] | None
    private_ip: pulumi.Output[str]
    instance_id: pulumi.Output[str]
    sending_ip: pulumi.CustomResource
    """The protected address resource (EIP / PrimaryIp) that carries the host's reputation."""
    sending_ipv6: pulumi.CustomResource | None = None
    """Its IPv6 twin, where the cloud gives the IPv6 address a resource of its own (Hetzner)."""
    config_version: pulumi.Output[str] | None = None
    """The version of the bundle the day-2 channel hands the running host."""


class Site(Protocol):
    """A cloud backend: it owns the network, the role firewalls and the day-2 channel, and builds per-host parts."""

    def machine(
        self, host: pulumi.Resource, name: str, role: Role, fqdn: str, bundle: pulumi.Output[Bundle]
    ) -> Machine:
        """The VM, booted to run `bundle`, and the channel that hands it every later version."""
        ...

    def ptr(
        self, host: pulumi.Resource, name: str, machine: Machine, fqdn: str, after: list[pulumi.Resource]
    ) -> None: ...

    def spool(self, host: pulumi.Resource, name: str, machine: Machine) -> pulumi.Resource: ...

    def secret(self, name: str, content: pulumi.Output[str], description: str) -> pulumi.Output[Secret]:
        """A secret file of the MTAs (the bearer map, a DKIM key) as their day-2 channel carries it."""
        ...


@dataclass
class HostArgs:
    """Inputs of either kind of host."""

    fqdn: str
    """Fully qualified name; also the PTR of the sending IP and the proxy's HELO name."""
    site: Site
    """The cloud backend that builds the machine."""
    zone: DnsZone
    """Where the forward records go."""
    bundle: pulumi.Output[Bundle]
    """What the host runs and enforces; each new version reaches the running host without replacing it."""


class _Host(pulumi.ComponentResource):
    role: Role

    def __init__(self, type_: str, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None):
        super().__init__(type_, name, None, opts)
        machine = args.site.machine(self, name, self.role, args.fqdn, args.bundle)
        records = args.zone.records(self, name, args.fqdn, machine)
        args.site.ptr(self, name, machine, args.fqdn, after=records)
        self._build(name, args, machine)

        self.fqdn = pulumi.Output.from_input(args.fqdn)
        self.public_ip = machine.public_ipv4
        self.public_ipv6 = machine.public_ipv6
        self.private_ip = machine.private_ip
        self.instance_id = machine.instance_id
        self.config_version = machine.config_version
        self.register_outputs(
            {
                "fqdn": self.fqdn,
                "publicIp": self.public_ip,
                "privateIp": self.private_ip,
                "instanceId": self.instance_id,
                "configVersion": self.config_version,
            }
        )

    def _build(self, name: str, args: HostArgs, machine: Machine) -> None:
        """Role-specific parts."""


class MtaHost(_Host):
    """KumoMTA: Nginx on 80/443 in front of kumod on 127.0.0.1:8000, with its spool on its own volume."""

    role = Role.MTA

    def __init__(self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:index:MtaHost", name, args, opts)

    def _build(self, name: str, args: HostArgs, machine: Machine) -> None:
        self.spool = args.site.spool(self, name, machine)


class ProxyHost(_Host):
    """KumoProxy: the SOCKS5 egress on 5000 and the IP that recipient MX hosts see."""

    role = Role.PROXY

    def __init__(self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kumomta:index:ProxyHost", name, args, opts)
