"""Stack configuration (namespace `kumomta`), validated before any resource is declared.

A bad value must stop the run with one line that names the key and the reason, so every
validator here raises a plain-English ValueError and `ConfigError` renders pydantic's errors
as `kumomta:<key>: <reason>` lines.
"""

import ipaddress
import json
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pulumi.runtime import config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "kumomta"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The recursive resolvers each cloud gives its hosts when `resolverCidrs` is not set.
DEFAULT_RESOLVERS = {
    # The Amazon-provided DNS server as every VPC instance can reach it.
    "aws": ["169.254.169.253/32"],
    # Hetzner's recursive resolvers.
    "hcloud": [
        "185.12.64.1/32",
        "185.12.64.2/32",
        "2a01:4ff:ff00::add:1/128",
        "2a01:4ff:ff00::add:2/128",
    ],
}

# Hetzner Cloud locations and the network zone each belongs to; a private network's subnet must
# sit in the zone of the servers it joins.
HCLOUD_LOCATIONS = {
    "fsn1": "eu-central",
    "nbg1": "eu-central",
    "hel1": "eu-central",
    "ash": "us-east",
    "hil": "us-west",
    "sin": "ap-southeast",
}

# A Hetzner firewall rule holds at most this many source or destination addresses.
HCLOUD_IPS_PER_RULE = 100

_RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]

# Where hosts may sync their clocks when `ntpCidrs` is not set. AWS needs no rule: security groups
# never filter the Amazon Time Sync Service (169.254.169.123), which the AWS hosts then use. A Hetzner
# firewall with out-rules drops everything else, NTP included, so the hosts may reach any NTP server
# (and use the distribution's pool) unless narrowed.
DEFAULT_TIME_SERVERS = {"aws": [], "hcloud": ["0.0.0.0/0", "::/0"]}
AMAZON_TIME_SYNC = "169.254.169.123"

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# An RFC 6750 bearer token that Nginx can hold as a quoted map key: 32 to 128 characters.
BEARER_TOKEN = re.compile(r"^(?=.{32,128}$)[A-Za-z0-9._~+/-]+=*$")


# IAM user and role ARNs (IAM User Guide, "IAM ARNs"; names: letters, digits and +=,.@_- up to 64, paths of /).
IAM_PRINCIPAL = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:(role|user)/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")


class ConfigError(Exception):
    """Raised for invalid stack config; its text is one `kumomta:<key>: <reason>` line per problem."""


def _cidr(value: Any) -> Network:
    if not isinstance(value, str):
        raise ValueError(f"expected a CIDR string such as 203.0.113.10/32, got {value!r}")  # noqa: TRY004 (pydantic reports only ValueError)
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not a valid CIDR ({err})") from None


def _one_server(net: Network) -> Network:
    """Hosts are configured to use exactly these servers, so each entry must be one address."""
    if net.prefixlen != net.max_prefixlen:
        raise ValueError(
            f"{net} is a range; the hosts are configured to use exactly these servers, so give single "
            f"addresses (/{net.max_prefixlen})"
        )
    return net


def _servers_or_anywhere(nets: list[Network]) -> list[Network]:
    """NTP sources: single addresses the hosts use, or "anywhere" (0.0.0.0/0, ::/0) for the distribution's pool."""
    anywhere = [n for n in nets if n.prefixlen == 0]
    if anywhere and len(anywhere) != len(nets):
        raise ValueError("mixes 0.0.0.0/0 or ::/0 (the distribution's pool) with specific servers; choose one")
    if not anywhere:
        for net in nets:
            _one_server(net)
    return nets


def _not_public(net: Network) -> Network:
    """Monitoring and admin sources must be specific networks, never the whole internet."""
    if net.prefixlen == 0:
        raise ValueError(f"{net} would open this port to the whole internet; name specific networks")
    return net


def _rfc1918(net: Network) -> Network:
    """Hetzner private networks take only the RFC 1918 ranges."""
    if not any(net.version == 4 and net.subnet_of(private) for private in _RFC1918):
        raise ValueError(f"{net} is not an RFC 1918 private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
    return net


def _location(value: str) -> str:
    if value not in HCLOUD_LOCATIONS:
        raise ValueError(f"{value!r} is not a Hetzner Cloud location; use one of {', '.join(sorted(HCLOUD_LOCATIONS))}")
    return value


def _label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS label (lowercase letters, digits and '-', at most 63)")
    return value


def _domain(value: str) -> str:
    value = value.rstrip(".").lower()
    labels = value.split(".")
    if len(labels) < 2 or not all(_LABEL.match(part) for part in labels) or len(value) > 253:
        raise ValueError(f"{value!r} is not a domain name such as yourdomain.com")
    return value


def _host(value: str) -> str:
    """A host name or an IP literal, as a probe target."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return _domain(value)


def _iam_principal(value: str) -> str:
    """A role or user ARN, the form a KMS key policy names a principal in (IAM ARN reference)."""
    if not IAM_PRINCIPAL.match(value):
        raise ValueError(f"{value!r} is not an IAM role or user ARN such as arn:aws:iam::123456789012:role/deploy")
    return value


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} is not an https:// URL")
    return value


def _unique(values: list) -> list:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{seen[0]} is listed twice")
    return values


def _role_subnets(network_key: str, network: Network, mta: Network, proxy: Network) -> None:
    """One IPv4 subnet per role, both inside the network and apart, so host firewalls can name a role's subnet."""
    for key, subnet in (("mtaSubnetCidr", mta), ("proxySubnetCidr", proxy)):
        if subnet.version != 4 or network.version != 4 or not subnet.subnet_of(network):
            raise ValueError(f"{key} {subnet} is not inside {network_key} {network}")
    if mta.overlaps(proxy):
        raise ValueError("mtaSubnetCidr and proxySubnetCidr overlap; each role needs its own subnet")


Cidr = Annotated[Any, AfterValidator(_cidr)]
PrivateCidr = Annotated[Any, AfterValidator(_cidr), AfterValidator(_rfc1918)]
RestrictedCidr = Annotated[Any, AfterValidator(_cidr), AfterValidator(_not_public)]
Label = Annotated[str, AfterValidator(_label)]
HostList = Annotated[list[Label], Field(min_length=1), AfterValidator(_unique)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, validate_default=True
    )


class Route53Dns(_Model):
    """Records go to an existing Route53 hosted zone."""

    provider: Literal["route53"]
    zone_id: str = Field(min_length=1)


class HcloudDns(_Model):
    """Records go to a Hetzner DNS zone; `create: true` makes the zone, otherwise it must exist."""

    provider: Literal["hcloud"]
    zone: Annotated[str, AfterValidator(_domain)]
    create: bool = False


class AwsSettings(_Model):
    """AWS placement and sizing.

    A dedicated VPC gets one public subnet per role, so the proxy's host firewall can name the MTA
    subnet. Give `vpcId` and `subnetId` together to put both roles in an existing subnet instead.
    """

    availability_zone: str | None = None
    # 4 vCPUs: KumoMTA's stated minimum (docs/userguide/installation/hardware.md: "At an absolute minimum, you
    # will need 4 CPU cores"), below which kumod logs an error at start (crates/kumod/src/main.rs). Not a
    # burstable type: a sending MTA is busy for hours, which would drain a t3's CPU credits.
    mta_instance_type: str = "c6i.xlarge"
    proxy_instance_type: str = "t3.small"
    ami_id: str | None = None
    root_volume_gb: int = Field(default=20, ge=8, le=1024)
    spool_volume_gb: int = Field(default=50, ge=1, le=16384)
    vpc_cidr: Annotated[Any, AfterValidator(_cidr)] = "10.42.0.0/16"
    mta_subnet_cidr: Annotated[Any, AfterValidator(_cidr)] = "10.42.1.0/24"
    proxy_subnet_cidr: Annotated[Any, AfterValidator(_cidr)] = "10.42.2.0/24"
    vpc_id: str | None = None
    subnet_id: str | None = None
    deployer_arns: Annotated[list[Annotated[str, AfterValidator(_iam_principal)]], AfterValidator(_unique)] = []
    """IAM roles or users that run `pulumi up`; they alone (with the MTA role) may decrypt the stack's
    secrets. Default: whoever runs it. List every one when several do, or each `up` takes the key from the last."""

    @model_validator(mode="after")
    def _network_choice(self):
        if (self.vpc_id is None) != (self.subnet_id is None):
            raise ValueError("give vpcId and subnetId together, or neither for a dedicated VPC")
        if self.vpc_id is None:
            _role_subnets("vpcCidr", self.vpc_cidr, self.mta_subnet_cidr, self.proxy_subnet_cidr)
        return self


class HcloudSettings(_Model):
    """Hetzner Cloud placement and sizing.

    One private network with a subnet per role joins every host. SOCKS5 travels only over it, and
    Hetzner's cloud firewalls do not filter private traffic, so the proxy's host firewall names the
    MTA subnet. `deleteProtection` sets Hetzner's own delete (and, for servers, rebuild) lock on
    servers, primary IPs and spool volumes, guarding against a console or CLI slip as well.
    """

    location: Annotated[str, AfterValidator(_location)] = "fsn1"
    mta_server_type: str = "cx33"
    proxy_server_type: str = "cx23"
    image: str = "ubuntu-22.04"
    backups: bool = False
    delete_protection: bool = True
    spool_volume_gb: int = Field(default=50, ge=10, le=10240)
    network_cidr: PrivateCidr = "10.43.0.0/16"
    mta_subnet_cidr: PrivateCidr = "10.43.1.0/24"
    proxy_subnet_cidr: PrivateCidr = "10.43.2.0/24"
    ssh_keys: Annotated[list[Annotated[str, Field(min_length=1)]], AfterValidator(_unique)] = []
    """Names or IDs of Hetzner SSH keys for root; without one, Hetzner mails out a root password."""

    @property
    def network_zone(self) -> str:
        return HCLOUD_LOCATIONS[self.location]

    @model_validator(mode="after")
    def _subnets(self):
        _role_subnets("networkCidr", self.network_cidr, self.mta_subnet_cidr, self.proxy_subnet_cidr)
        return self


class VerifySettings(_Model):
    """Targets of `make verify`'s inside checks; the program itself never reads them.

    They live in stack config so every operator verifies a stack against the same targets.
    """

    test_mx: Annotated[str, AfterValidator(_host)] | None = None
    """A mail exchanger each proxy must reach on 25/tcp, e.g. a mailbox provider's MX."""
    webhook_url: Annotated[str, AfterValidator(_https_url)] | None = None
    """The PING8 webhook URL each MTA must reach over HTTPS."""


class Settings(_Model):
    """Everything the program reads from `kumomta:*` stack config."""

    cloud: Literal["aws", "hcloud"]
    domain: Annotated[str, AfterValidator(_domain)]
    mta_hosts: HostList = ["mta"]
    proxy_hosts: HostList = ["proxy"]
    ping8_cidrs: Annotated[list[Cidr], Field(min_length=1), AfterValidator(_unique)]
    trusted_cidrs: Annotated[list[Cidr], AfterValidator(_unique)] = []
    resolver_cidrs: (
        Annotated[
            list[Annotated[Any, AfterValidator(_cidr), AfterValidator(_one_server)]],
            Field(min_length=1),
            AfterValidator(_unique),
        ]
        | None
    ) = None
    ntp_cidrs: Annotated[list[Cidr], AfterValidator(_unique), AfterValidator(_servers_or_anywhere)] | None = None
    monitoring_cidrs: Annotated[list[RestrictedCidr], AfterValidator(_unique)] = []
    proxy_metrics_port: Port = 9101
    admin_cidrs: Annotated[list[RestrictedCidr], AfterValidator(_unique)] = []
    package_egress: bool = True
    ipv6: bool = False
    dns: Annotated[Route53Dns | HcloudDns, Field(discriminator="provider")]
    aws: AwsSettings = Field(default_factory=AwsSettings)
    hcloud: HcloudSettings = Field(default_factory=HcloudSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    inject_token: SecretStr | None = None
    """Secret config (`pulumi config set --secret kumomta:injectToken ...`); generated when absent."""

    @field_validator("inject_token")
    @classmethod
    def _bearer_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not BEARER_TOKEN.match(token.get_secret_value()):
            raise ValueError("must be 32 to 128 letters, digits and -._~+/ (then '=' padding)")
        return token

    @field_validator("proxy_hosts")
    @classmethod
    def _distinct_from_mtas(cls, proxies: list[str], info: ValidationInfo) -> list[str]:
        shared = sorted(set(proxies) & set(info.data.get("mta_hosts", [])))
        if shared:
            raise ValueError(f"{shared[0]!r} is also an MTA label; each host needs its own name")
        return proxies

    @field_validator("ping8_cidrs", "trusted_cidrs", "resolver_cidrs", "ntp_cidrs", "monitoring_cidrs", "admin_cidrs")
    @classmethod
    def _fits_one_hcloud_rule(cls, cidrs: list[Network] | None, info: ValidationInfo) -> list[Network] | None:
        """Each of these lists becomes one Hetzner firewall rule, which holds at most 100 addresses."""
        if info.data.get("cloud") == "hcloud" and cidrs and len(cidrs) > HCLOUD_IPS_PER_RULE:
            raise ValueError(
                f"{len(cidrs)} networks, but a Hetzner firewall rule holds at most {HCLOUD_IPS_PER_RULE}; "
                "merge them into wider ranges"
            )
        return cidrs

    @field_validator("dns")
    @classmethod
    def _zone_holds_domain(cls, dns: Route53Dns | HcloudDns, info: ValidationInfo) -> Route53Dns | HcloudDns:
        domain = info.data.get("domain")
        if isinstance(dns, HcloudDns) and domain and not (domain == dns.zone or domain.endswith(f".{dns.zone}")):
            raise ValueError(f"zone {dns.zone} does not hold domain {domain}; the host records could not go there")
        return dns

    @field_validator("proxy_metrics_port")
    @classmethod
    def _free_port(cls, port: int) -> int:
        if port in (22, 25, 53, 80, 443, 5000, 8000):
            raise ValueError(f"{port} is already a port of the matrix; pick another (default 9101)")
        return port

    @property
    def resolvers(self) -> list[Network]:
        """The configured resolvers, or the cloud's own when none are set."""
        return self._or_default(self.resolver_cidrs, DEFAULT_RESOLVERS)

    @property
    def time_servers(self) -> list[Network]:
        """Where NTP may go: the configured sources (AWS: `[]` too means Amazon Time Sync), or the cloud's default."""
        return self._or_default(self.ntp_cidrs, DEFAULT_TIME_SERVERS)

    @property
    def ntp_servers(self) -> list[str] | None:
        """The servers chrony uses; None keeps the distribution's pool, which "anywhere" allows."""
        if self.cloud == "aws" and not self.ntp_cidrs:
            return [AMAZON_TIME_SYNC]
        nets = self.time_servers
        if any(net.prefixlen == 0 for net in nets):
            return None
        return [str(net.network_address) for net in nets]

    @field_validator("ntp_cidrs")
    @classmethod
    def _has_a_clock(cls, nets: list[Network] | None, info: ValidationInfo) -> list[Network] | None:
        """AWS always has Amazon Time Sync; a Hetzner host with no NTP rule has no clock source at all."""
        if info.data.get("cloud") == "hcloud" and nets == []:
            raise ValueError(
                "[] would leave Hetzner hosts without a time source (their firewall drops NTP); "
                "name NTP servers, or leave it unset for any"
            )
        return nets

    def _or_default(self, configured: list[Network] | None, defaults: dict[str, list[str]]) -> list[Network]:
        """`configured` when set, else this cloud's defaults, their IPv6 ones only with `ipv6`."""
        if configured is not None:
            return configured
        nets = [ipaddress.ip_network(c) for c in defaults[self.cloud]]
        return [net for net in nets if net.version == 4 or self.ipv6]

    def fqdn(self, label: str) -> str:
        return f"{label}.{self.domain}"


def decode(raw: dict[str, str]) -> dict[str, Any]:
    """Turn engine config (`kumomta:key` -> string, objects as JSON) into plain values."""
    values = {}
    for key, text in raw.items():
        namespace, _, name = key.partition(":")
        if namespace != NAMESPACE:
            continue
        try:
            values[name] = json.loads(text)
        except (TypeError, ValueError):
            values[name] = text
    return values


def load() -> Settings:
    """Read `kumomta:*` from the engine's config, wherever the language host put it."""
    return parse(decode({**config.get_config_env(), **config.CONFIG.get()}))


def parse(values: dict[str, Any]) -> Settings:
    """Validate decoded config; raise ConfigError with one line per bad key."""
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        raise ConfigError("\n".join(_line(e) for e in err.errors())) from None


def _line(error: dict) -> str:
    path = ""
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("route53", "hcloud") and path == "dns":
            continue  # the discriminated-union branch name, not a key the user wrote
        else:
            path += f".{part}" if path else part
    reason = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        reason = "is required"
    elif error["type"] == "extra_forbidden":
        reason = "is not a known setting (check the spelling)"
    key = f"{NAMESPACE}:{path}" if path else NAMESPACE
    return f"{key}: {reason}"
