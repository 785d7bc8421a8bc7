"""The plain values the backends hand to the renderers."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProxyTarget:
    """One KumoProxy as an MTA sees it."""

    fqdn: str
    """EHLO name of mail sent through it; equals the PTR of its sending IP."""
    connect_ip: str
    """Where the MTA reaches its SOCKS5 listener (the private address)."""
    source_ip: str
    """The address the proxy binds for delivery: its private IP on AWS (the EIP is NAT), public on Hetzner."""
    source_ipv6: str | None = None
    """With `ipv6`: its IPv6 address, on its interface on both clouds, for MX hosts reached over IPv6."""


@dataclass(frozen=True)
class SsmToken:
    """AWS: the host reads the bearer token at boot from this SecureString with its instance role."""

    parameter: str
    region: str


@dataclass(frozen=True)
class InlineToken:
    """Hetzner: user data is the only channel, so the token itself goes in (a secret output)."""

    value: str = field(repr=False)
