"""Stack configuration (namespace `kumomta`), validated in one strict pass before any resource is declared.

A bad value must stop the run with one line that names the key and the reason, so every validator
raises a plain-English ValueError and `ConfigError` renders pydantic's errors as `kumomta:<key>: <reason>`
lines. Keys are taken only as documented (camelCase); what one value may be lives in `values.py`, what
the clouds allow in `limits.py`, and when sources add up to the internet in `exposure.py`.
"""

import datetime
import ipaddress
import json
import re
from typing import Annotated, Any, Literal, get_args

from pulumi import get_stack
from pulumi.runtime import config
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import exposure
from components.values import (
    Cidr,
    Domain,
    Flag,
    Label,
    Network,
    Port,
    Text,
    ami,
    bearer_token,
    cidr,
    host,
    https_url,
    iam_principal,
    instance_type,
    number,
    unique,
    zone_id,
)

NAMESPACE = "kumomta"

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
# The server families each network zone offers: shared Intel/AMD (cx) and Arm (cax) only in Germany and
# Finland, shared AMD (cpx) and dedicated (ccx) everywhere (https://docs.hetzner.com/cloud/servers/overview).
HCLOUD_FAMILIES = {
    "eu-central": ("cx", "cpx", "cax", "ccx"),
    "us-east": ("cpx", "ccx"),
    "us-west": ("cpx", "ccx"),
    "ap-southeast": ("cpx", "ccx"),
}
# KumoMTA publishes packages for Ubuntu 22.04 (amd64 and aarch64), not 24.04 (its install guide,
# docs/userguide/installation/linux.md: "Rocky Linux 8/9, Ubuntu 20.04/22.04, and Amazon Linux 2/2023").
KUMOMTA_IMAGES = ("ubuntu-22.04",)

# A Hetzner firewall rule holds at most this many source or destination addresses.
HCLOUD_IPS_PER_RULE = 100

# Hetzner keeps the first address of a subnet for its gateway; hosts are numbered from here.
_FIRST_HOST = 10
HCLOUD_PUBLIC_GATEWAY = ipaddress.IPv4Address("172.31.1.1")

_RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]

# Where hosts may sync their clocks when `ntpCidrs` is not set. AWS needs no rule: security groups
# never filter the Amazon Time Sync Service (169.254.169.123), which the AWS hosts then use. A Hetzner
# firewall with out-rules drops everything else, NTP included, so the hosts may reach any NTP server
# (and use the distribution's pool) unless narrowed.
DEFAULT_TIME_SERVERS = {"aws": [], "hcloud": ["0.0.0.0/0", "::/0"]}
AMAZON_TIME_SYNC = "169.254.169.123"

# Ports the matrix already uses; the proxy's metrics must listen elsewhere.
_MATRIX_PORTS = (22, 25, 53, 80, 123, 443, 5000, 8000)


class ConfigError(Exception):
    """Raised for invalid stack config; its text is one `kumomta:<key>: <reason>` line per problem."""


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
    """A source of a port that must never face the internet (SSH, metrics): a specific network."""
    if exposure.public([net]):
        whole = "the whole internet" if net.prefixlen == 0 else "the internet (an IPv4 /16's worth or more)"
        raise ValueError(f"{net} would open this port to {whole}; name specific networks")
    return net


def _not_public_together(nets: list[Network]) -> list[Network]:
    """Sources add up: many small public networks can cover as much as one the pack counts as the internet."""
    if exposure.public(nets):
        raise ValueError(
            f"these {len(nets)} networks together cover as much public address space as an IPv4 /16 or an IPv6 "
            "/32, which the policy pack counts as the internet; name fewer, narrower networks"
        )
    return nets


def _rfc1918(net: Network) -> Network:
    """Hetzner private networks take only the RFC 1918 ranges (Hetzner Cloud API, Networks: ip_range)."""
    if not any(net.version == 4 and net.subnet_of(private) for private in _RFC1918):
        raise ValueError(f"{net} is not an RFC 1918 private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
    return net


def _aws_block(net: Network) -> Network:
    """AWS VPC User Guide, "VPC CIDR blocks" and "Subnet CIDR blocks": "The allowed block size is between
    a /16 netmask (65,536 IP addresses) and /28 netmask (16 IP addresses)"."""
    if net.version != 4 or not 16 <= net.prefixlen <= 28:
        raise ValueError(f"{net} is not an IPv4 block between /16 and /28, as AWS takes for a VPC or subnet")
    return net


def _location(value: str) -> str:
    if value not in HCLOUD_LOCATIONS:
        raise ValueError(f"{value!r} is not a Hetzner Cloud location; use one of {', '.join(sorted(HCLOUD_LOCATIONS))}")
    return value


def _role_subnets(network_key: str, network: Network, mta: Network, proxy: Network) -> None:
    """One IPv4 subnet per role, both inside the network and apart, so host firewalls can name a role's subnet."""
    for key, subnet in (("mtaSubnetCidr", mta), ("proxySubnetCidr", proxy)):
        if subnet.version != 4 or network.version != 4 or not subnet.subnet_of(network):
            raise ValueError(f"{key} {subnet} is not inside {network_key} {network}")
    if mta.overlaps(proxy):
        raise ValueError("mtaSubnetCidr and proxySubnetCidr overlap; each role needs its own subnet")


CidrList = Annotated[list[Cidr], AfterValidator(unique)]
RestrictedList = Annotated[
    list[Annotated[Any, AfterValidator(cidr), AfterValidator(_not_public)]],
    AfterValidator(unique),
    AfterValidator(_not_public_together),
]
HostList = Annotated[list[Label], Field(min_length=1), AfterValidator(unique)]
AwsBlock = Annotated[Any, AfterValidator(cidr), AfterValidator(_aws_block)]
PrivateCidr = Annotated[Any, AfterValidator(cidr), AfterValidator(_rfc1918)]
Name = Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v), Field(min_length=1)]


class _Model(BaseModel):
    # `validate_by_name` only for code that builds models; stack config is parsed by alias alone (`parse`).
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, extra="forbid", frozen=True, validate_default=True
    )


class Route53Dns(_Model):
    """Records go to an existing Route53 hosted zone."""

    provider: Literal["route53"]
    zone_id: Annotated[str, BeforeValidator(lambda v: v if isinstance(v, str) else repr(v)), AfterValidator(zone_id)]


class HcloudDns(_Model):
    """Records go to a Hetzner DNS zone; `create: true` makes the zone, otherwise it must exist."""

    provider: Literal["hcloud"]
    zone: Domain
    create: Flag = False


def _dns_name(name: str) -> None:
    """A record name the stack makes from settings: labels of 63 characters at most, 253 in all (RFC 1035 2.3.4)."""
    long = next((label for label in name.split(".") if len(label) > 63), None)
    if long is not None:
        raise ValueError(f"the record name {name} has the label {long!r} of {len(long)} characters; at most 63")
    if len(name) > 253:
        raise ValueError(f"the record name {name} is {len(name)} characters; at most 253 (RFC 1035)")


# Each deployer is named in the secrets key's policy, which holds 32 KB (KMS CreateKey: Policy); 20 of the
# longest ARNs IAM allows (a 512-character path) stay well within it.
MAX_DEPLOYERS = 20


def _few_deployers(arns: list[str]) -> list[str]:
    if len(arns) > MAX_DEPLOYERS:
        raise ValueError(
            f"{len(arns)} principals; the secrets key's policy names each and holds 32 KB, so at most "
            f"{MAX_DEPLOYERS}: give a role they all assume instead"
        )
    return arns


class AwsSettings(_Model):
    """AWS placement and sizing.

    A dedicated VPC gets one public subnet per role, so the proxy's host firewall can name the MTA
    subnet. Give `vpcId` and `subnetId` together to put both roles in an existing subnet instead.
    """

    availability_zone: Text | None = None
    # 4 vCPUs: KumoMTA's stated minimum (docs/userguide/installation/hardware.md: "At an absolute minimum, you
    # will need 4 CPU cores"), below which kumod logs an error at start (crates/kumod/src/main.rs). Not a
    # burstable type: a sending MTA is busy for hours, which would drain a t3's CPU credits.
    mta_instance_type: Annotated[Text, AfterValidator(instance_type)] = "c6i.xlarge"
    proxy_instance_type: Annotated[Text, AfterValidator(instance_type)] = "t3.small"
    ami_id: Annotated[str, AfterValidator(ami)] | None = None
    # gp3 volumes take 1 to 16,384 GiB (EBS User Guide, "Amazon EBS volume types"); Ubuntu's image needs 8.
    root_volume_gb: number(8, 16384) = 20
    spool_volume_gb: number(1, 16384) = 50
    vpc_cidr: AwsBlock = "10.42.0.0/16"
    mta_subnet_cidr: AwsBlock = "10.42.1.0/24"
    proxy_subnet_cidr: AwsBlock = "10.42.2.0/24"
    vpc_id: Name | None = None
    subnet_id: Name | None = None
    deployer_arns: Annotated[
        list[Annotated[str, AfterValidator(iam_principal)]], AfterValidator(unique), AfterValidator(_few_deployers)
    ] = []
    """IAM roles or users that run `pulumi up`; they alone (with the MTA role) may decrypt the stack's
    secrets. Default: whoever runs it. List every one when several do, or each `up` takes the key from the last."""

    @field_validator("availability_zone")
    @classmethod
    def _zone_of_the_region(cls, zone: str | None, info: ValidationInfo) -> str | None:
        """A zone is its region's name and a letter (us-east-1a), or a Local Zone's longer name (us-east-1-bos-1a)."""
        region = (info.context or {}).get("region")
        if zone is not None and region and not (zone[:-1] == region or zone.startswith(f"{region}-")):
            raise ValueError(f"{zone!r} is not an availability zone of aws:region {region}")
        if zone is not None and not (zone[-1:].isalpha() and zone[-1:].islower()):
            raise ValueError(f"{zone!r} is not an availability zone name such as eu-central-1a")
        return zone

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

    location: Annotated[Text, AfterValidator(_location)] = "fsn1"
    mta_server_type: Name = "cx33"
    proxy_server_type: Name = "cx23"
    image: Text = "ubuntu-22.04"
    backups: Flag = False
    """Refused: Hetzner's backups copy the root disk, and the secrets live there (README, "What is never exposed")."""
    delete_protection: Flag = True
    # Hetzner volumes: 10 to 10,240 GB (Hetzner Cloud API, Volumes: size).
    spool_volume_gb: number(10, 10240) = 50
    network_cidr: PrivateCidr = "10.43.0.0/16"
    mta_subnet_cidr: PrivateCidr = "10.43.1.0/24"
    proxy_subnet_cidr: PrivateCidr = "10.43.2.0/24"
    ssh_keys: Annotated[list[Name], AfterValidator(unique)] = []
    """Names or IDs of Hetzner SSH keys for root; without one, Hetzner mails out a root password."""
    private_ips: dict[str, Annotated[Any, AfterValidator(lambda v: ipaddress.IPv4Address(text_of(v)))]] = {}
    """Private address per host label; by default the Nth host of a role gets its subnet's address 10 + N."""

    @field_validator("backups")
    @classmethod
    def _no_backups(cls, backups: bool) -> bool:
        if backups:
            raise ValueError(
                "true is refused: Hetzner's backups copy the root disk, where the injection token (and DKIM keys) "
                "live, so anyone who can restore one in the project gets them. The hosts are rebuilt from the "
                "stack instead, and queued mail lives on the spool volume, which backups never include"
            )
        return backups

    @field_validator("image")
    @classmethod
    def _kumomta_packages(cls, image: str) -> str:
        if image not in KUMOMTA_IMAGES:
            raise ValueError(f"{image!r}: KumoMTA publishes packages for {', '.join(KUMOMTA_IMAGES)} only")
        return image

    @field_validator("mta_server_type", "proxy_server_type")
    @classmethod
    def _offered_here(cls, server_type: str, info: ValidationInfo) -> str:
        zone = HCLOUD_LOCATIONS.get(info.data.get("location", ""))
        family = server_type.rstrip("0123456789")
        if zone and family not in HCLOUD_FAMILIES[zone]:
            raise ValueError(
                f"{server_type!r} is not offered in {info.data['location']} ({zone}); server families there: "
                f"{', '.join(HCLOUD_FAMILIES[zone])}"
            )
        return server_type

    @property
    def network_zone(self) -> str:
        return HCLOUD_LOCATIONS[self.location]

    def private_ip(self, subnet: Network, labels: list[str], label: str) -> str:
        """Pinned, so a replaced server comes back on the address the MTAs dial and the firewalls name."""
        if label in self.private_ips:
            return str(self.private_ips[label])
        return str(subnet.network_address + _FIRST_HOST + labels.index(label))

    @model_validator(mode="after")
    def _subnets(self):
        # Hetzner Cloud API, Networks: "Minimum network size is /24"; subnets: "Minimum Network size is /30".
        if self.network_cidr.prefixlen > 24:
            raise ValueError(f"networkCidr {self.network_cidr} is smaller than the /24 Hetzner takes for a network")
        for key in ("mta_subnet_cidr", "proxy_subnet_cidr"):
            if getattr(self, key).prefixlen > 30:
                raise ValueError(f"{to_camel(key)} {getattr(self, key)} is smaller than the /30 Hetzner takes")
        # Every Hetzner server's public interface routes through 172.31.1.1, on-link (Hetzner Docs, Cloud
        # Servers, "Static IP configuration"); a private network holding it would take that route's place.
        if HCLOUD_PUBLIC_GATEWAY in self.network_cidr:
            raise ValueError(
                f"networkCidr {self.network_cidr} holds {HCLOUD_PUBLIC_GATEWAY}, the gateway of every Hetzner "
                "server's public interface; choose a range without it, such as 10.43.0.0/16"
            )
        _role_subnets("networkCidr", self.network_cidr, self.mta_subnet_cidr, self.proxy_subnet_cidr)
        return self


_LABEL_PARTS = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# RFC 7208 section 5: the mechanisms another sender may be listed with.
_SPF_TERM = re.compile(r"(include|a|mx|ip4|ip6|exists):[^\s\"\\]+|a|mx")


def _spf_term(value: str) -> str:
    if not _SPF_TERM.fullmatch(value) or value.startswith(("all", "-all", "~all")):
        raise ValueError(f"{value!r} is not an SPF mechanism such as include:_spf.google.com or ip4:192.0.2.0/24")
    return value


def _mailto(value: str) -> str:
    """A mailto: URI (RFC 7489 section 6.4) as it can stand in a TXT record: printable ASCII without a quote or
    backslash (either would end or escape the record's string) or a separator DMARC gives a meaning (`,` `;` `!`)."""
    address = value.removeprefix("mailto:")
    local, _, domain = address.partition("@")
    if (
        not (value.startswith("mailto:") and local and domain and re.fullmatch(r"[\x21-\x7e]+", address))
        or any(c in address for c in '"\\,;!')
        or "@" in domain
    ):
        raise ValueError(f"{value!r} is not a mailto: address such as mailto:dmarc@yourdomain.com")
    return value


def text_of(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be an address string such as 10.43.2.10, not {value!r}")  # noqa: TRY004
    return value


def _selector(value: str) -> str:
    """A DKIM selector is one or more DNS labels (RFC 6376 section 3.1), published under `._domainkey`."""
    if not all(_LABEL_PARTS.fullmatch(part) for part in value.split(".")) or len(value) > 63:
        raise ValueError(f"{value!r} is not a DKIM selector (DNS labels such as s202611)")
    return value


def _go_time(value: Any) -> Any:
    """An unquoted date in the stack file reaches the program as Go prints a time (`2026-11-01 00:00:00 +0000 UTC`:
    the CLI reads YAML with yaml.v3, which builds a time.Time); read it as the date it was."""
    if isinstance(value, str) and (m := re.fullmatch(r"(\S+) (\S+) ([+-]\d\d)(\d\d) \S+", value)):
        return f"{m[1]}T{m[2]}{m[3]}:{m[4]}"
    return value


class DkimSelector(_Model):
    """A key pair, published as `<name>._domainkey.<domain>`, signing from `signFrom` (ISO date) on."""

    name: Annotated[Text, AfterValidator(_selector)]
    sign_from: Annotated[datetime.datetime, BeforeValidator(_go_time)] | None = None
    """Publish first, sign later: mailbox providers must be able to fetch the new key before it signs."""


class DkimSettings(_Model):
    """Signing keys: one per domain and selector, generated by the stack and kept only as secrets.

    The newest selector whose `signFrom` has passed signs (RFC 6376 keys are looked up by selector,
    so the old one is still verified until it is removed from the list).
    """

    domains: list[Domain] | None = None
    """Signing domains; default: `kumomta:domain`. Each must be in the DNS zone, where its records go."""
    selectors: Annotated[list[DkimSelector], Field(min_length=1), AfterValidator(unique)] = [
        DkimSelector(name="kumomta")
    ]
    ed25519: Flag = False
    """Beside each RSA-2048 key, an Ed25519 one (RFC 8463) under `<selector>-ed25519`, signing too."""
    publish: Flag = True
    """Publish the DKIM TXT records; false when they are managed elsewhere (README, "Sending authentication")."""

    @field_validator("selectors")
    @classmethod
    def _names_once(cls, selectors: list[DkimSelector]) -> list[DkimSelector]:
        names = [s.name for s in selectors]
        unique(names)
        return selectors


class SpfSettings(_Model):
    publish: Flag = True
    """SPF on each signing domain (and each proxy's name): exactly the sending addresses, then `-all`."""
    include: Annotated[list[Annotated[Text, AfterValidator(_spf_term)]], AfterValidator(unique)] = []
    """Other senders of the domain's mail, as SPF mechanisms such as include:_spf.google.com."""


class DmarcSettings(_Model):
    publish: Flag = True
    policy: Literal["none", "quarantine", "reject"] = "none"
    rua: Annotated[Text, AfterValidator(_mailto)] | None = None
    """Where aggregate reports go, e.g. mailto:dmarc@yourdomain.com (RFC 7489 section 6.3)."""


class VerifySettings(_Model):
    """Targets of `make verify`'s inside checks; the program itself never reads them.

    They live in stack config so every operator verifies a stack against the same targets.
    """

    test_mx: Annotated[str, BeforeValidator(text_of), AfterValidator(host)] | None = None
    """A mail exchanger each proxy must reach on 25/tcp, e.g. a mailbox provider's MX."""
    webhook_url: Annotated[str, AfterValidator(https_url)] | None = None
    """The PING8 webhook URL each MTA must reach over HTTPS."""


class Settings(_Model):
    """Everything the program reads from `kumomta:*` stack config."""

    cloud: Literal["aws", "hcloud"]
    domain: Domain
    mta_hosts: HostList = ["mta"]
    proxy_hosts: HostList = ["proxy"]
    ping8_cidrs: Annotated[CidrList, Field(min_length=1)]
    trusted_cidrs: CidrList = []
    resolver_cidrs: (
        Annotated[
            list[Annotated[Any, AfterValidator(cidr), AfterValidator(_one_server)]],
            Field(min_length=1),
            AfterValidator(unique),
        ]
        | None
    ) = None
    ntp_cidrs: Annotated[CidrList, AfterValidator(_servers_or_anywhere)] | None = None
    monitoring_cidrs: RestrictedList = []
    proxy_metrics_port: Port = 9101
    admin_cidrs: RestrictedList = []
    deploy_cidrs: RestrictedList = []
    """Hetzner: where `pulumi up` runs; it pushes each host's configuration over SSH from there."""
    host_aliases: dict[str, Label] = {}
    """Renamed hosts, new label -> the label the host was first deployed with: it keeps its sending IP, spool
    and channel (Pulumi aliases; README, "Changing a running stack")."""
    package_egress: Flag = True
    ipv6: Flag = False
    dns: Annotated[Route53Dns | HcloudDns, Field(discriminator="provider")]
    aws: AwsSettings = Field(default_factory=AwsSettings)
    hcloud: HcloudSettings = Field(default_factory=HcloudSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    dkim: DkimSettings = Field(default_factory=DkimSettings)
    spf: SpfSettings = Field(default_factory=SpfSettings)
    dmarc: DmarcSettings = Field(default_factory=DmarcSettings)
    inject_token: SecretStr | None = None
    """Secret config (`pulumi config set --secret kumomta:injectToken ...`); generated when absent."""

    @field_validator("inject_token")
    @classmethod
    def _bearer_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None:
            bearer_token(token.get_secret_value())
        return token

    @field_validator("mta_hosts", "proxy_hosts")
    @classmethod
    def _names_fit(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        """Every host's FQDN is a DNS name (at most 253 characters) and an MTA's is also its certificate's CN: at
        most 64 (RFC 5280's ub-common-name; Let's Encrypt refuses longer, and so does the self-signed
        placeholder's `openssl req -subj /CN=`)."""
        limit = 64 if info.field_name == "mta_hosts" else 253
        for label in labels:
            if len(fqdn := f"{label}.{info.data.get('domain', '')}") > limit:
                why = "an MTA's name is its certificate's CN" if limit == 64 else "a DNS name holds"
                raise ValueError(f"{fqdn} is {len(fqdn)} characters; {why}: at most {limit}")
        return labels

    @field_validator("proxy_hosts")
    @classmethod
    def _distinct_from_mtas(cls, proxies: list[str], info: ValidationInfo) -> list[str]:
        shared = sorted(set(proxies) & set(info.data.get("mta_hosts", [])))
        if shared:
            raise ValueError(f"{shared[0]!r} is also an MTA label; each host needs its own name")
        return proxies

    @field_validator(
        "ping8_cidrs", "trusted_cidrs", "resolver_cidrs", "ntp_cidrs", "monitoring_cidrs", "admin_cidrs", "deploy_cidrs"
    )
    @classmethod
    def _fits_one_hcloud_rule(cls, cidrs: list[Network] | None, info: ValidationInfo) -> list[Network] | None:
        """Each of these lists becomes one Hetzner firewall rule, which holds at most 100 addresses."""
        if info.data.get("cloud") == "hcloud" and cidrs and len(cidrs) > HCLOUD_IPS_PER_RULE:
            raise ValueError(
                f"{len(cidrs)} networks, but a Hetzner firewall rule holds at most {HCLOUD_IPS_PER_RULE}; "
                "merge them into wider ranges"
            )
        return cidrs

    @field_validator("deploy_cidrs")
    @classmethod
    def _deploy_channel(cls, nets: list[Network], info: ValidationInfo) -> list[Network]:
        """Hetzner has no parameter store: `pulumi up` hands hosts their configuration over SSH (README)."""
        cloud = info.data.get("cloud")
        if cloud == "hcloud" and not nets:
            raise ValueError(
                "is required on Hetzner: `pulumi up` hands each host its configuration over SSH from there; "
                "name the network it runs from (a /32 for one machine, your self-hosted runner's or bastion's)"
            )
        if cloud == "aws" and nets:
            raise ValueError("is for Hetzner only; AWS hosts fetch their configuration from SSM Parameter Store")
        # Port 22 admits admin and deploy networks alike: together they must not be the internet either.
        _not_public_together([*info.data.get("admin_cidrs", []), *nets])
        return nets

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

    @field_validator("hcloud")
    @classmethod
    def _private_ips_fit(cls, conf: HcloudSettings, info: ValidationInfo) -> HcloudSettings:
        """Every host's pinned address is inside its role's subnet, and no two hosts share one (Hetzner stacks)."""
        if info.data.get("cloud") != "hcloud":
            return conf
        roles = {"mtaSubnetCidr": info.data.get("mta_hosts", []), "proxySubnetCidr": info.data.get("proxy_hosts", [])}
        unknown = sorted(set(conf.private_ips) - {label for labels in roles.values() for label in labels})
        if unknown:
            raise ValueError(f"privateIps names {unknown[0]!r}, which is not a host of this stack")
        taken: dict[str, str] = {}
        for key, labels in roles.items():
            subnet = conf.mta_subnet_cidr if key == "mtaSubnetCidr" else conf.proxy_subnet_cidr
            usable = subnet.num_addresses - _FIRST_HOST - 1
            if len(labels) > usable:
                raise ValueError(f"{key} {subnet} holds {usable} hosts, not {len(labels)}; give it a wider range")
            for label in labels:
                address = ipaddress.ip_address(conf.private_ip(subnet, labels, label))
                if not subnet.network_address + 1 < address < subnet.broadcast_address:
                    raise ValueError(f"privateIps.{label}: {address} is not a host address of {key} {subnet}")
                if str(address) in taken:
                    raise ValueError(f"privateIps.{label}: {address} is also {taken[str(address)]}'s address")
                taken[str(address)] = label
        return conf

    @field_validator("aws")
    @classmethod
    def _subnets_hold_the_fleet(cls, conf: AwsSettings, info: ValidationInfo) -> AwsSettings:
        """AWS keeps five addresses of every subnet (the first four and the last: AWS VPC User Guide, "Subnet
        CIDR blocks"), and each host takes one. AWS stacks only."""
        if conf.vpc_id is not None or info.data.get("cloud") != "aws":
            return conf
        for key, subnet, labels in (
            ("mtaSubnetCidr", conf.mta_subnet_cidr, info.data.get("mta_hosts", [])),
            ("proxySubnetCidr", conf.proxy_subnet_cidr, info.data.get("proxy_hosts", [])),
        ):
            if len(labels) > subnet.num_addresses - 5:
                raise ValueError(
                    f"{key} {subnet} holds {subnet.num_addresses - 5} hosts, not {len(labels)}; give it a wider range"
                )
        return conf

    @field_validator("dns")
    @classmethod
    def _zone_holds_domain(cls, dns: Route53Dns | HcloudDns, info: ValidationInfo) -> Route53Dns | HcloudDns:
        domain = info.data.get("domain")
        if isinstance(dns, HcloudDns) and domain and not (domain == dns.zone or domain.endswith(f".{dns.zone}")):
            raise ValueError(f"zone {dns.zone} does not hold domain {domain}; the host records could not go there")
        return dns

    @field_validator("dkim")
    @classmethod
    def _signing_domains_in_the_zone(cls, dkim: DkimSettings, info: ValidationInfo) -> DkimSettings:
        """The records of a signing domain go to the stack's zone, so the domain must be in it (Hetzner names
        its zone; a Route53 zone is found by ID, and a domain outside it is refused by Route53 at `up`)."""
        dns, domain = info.data.get("dns"), info.data.get("domain")
        zone = dns.zone if isinstance(dns, HcloudDns) else None
        suffix = "-ed25519" if dkim.ed25519 else ""
        for name in dkim.domains or ([domain] if domain else []):
            if zone and not (name == zone or name.endswith(f".{zone}")):
                raise ValueError(f"signing domain {name} is not in the DNS zone {zone}, where its records go")
            for selector in dkim.selectors:
                _dns_name(f"{selector.name}{suffix}._domainkey.{name}")
        return dkim

    @field_validator("dmarc")
    @classmethod
    def _dmarc_names(cls, dmarc: DmarcSettings, info: ValidationInfo) -> DmarcSettings:
        dkim, domain = info.data.get("dkim"), info.data.get("domain")
        if dmarc.publish and dkim is not None:
            for name in dkim.domains or ([domain] if domain else []):
                _dns_name(f"_dmarc.{name}")
        return dmarc

    @property
    def signing_domains(self) -> list[str]:
        return list(self.dkim.domains or [self.domain])

    @field_validator("host_aliases")
    @classmethod
    def _renames_of_this_stack(cls, aliases: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        hosts = [*info.data.get("mta_hosts", []), *info.data.get("proxy_hosts", [])]
        for new, old in aliases.items():
            if new not in hosts:
                raise ValueError(f"{new!r} is not a host of this stack; the keys are the hosts' labels now")
            if old in hosts:
                raise ValueError(f"{old!r} is still a host of this stack, so {new!r} cannot take over its resources")
        if len(set(aliases.values())) != len(aliases):
            raise ValueError("two hosts cannot both take over the same old host")
        return aliases

    def first_label(self, label: str) -> str:
        """The label a host was first deployed with: names that running host already uses keep to it."""
        return self.host_aliases.get(label, label)

    @field_validator("proxy_metrics_port")
    @classmethod
    def _free_port(cls, port: int) -> int:
        if port in _MATRIX_PORTS:
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
    """Read `kumomta:*` (and `aws:region`) from the engine's config, wherever the language host put it."""
    raw = {**config.get_config_env(), **config.CONFIG.get()}
    return parse(decode(raw), region=raw.get("aws:region"), stack=get_stack())


# AWS region names: `eu-central-1`, `us-gov-west-1`, `ap-southeast-3` (AWS General Reference, "Regions").
AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")

# Hetzner Cloud API, Labels: a value is 63 characters at most, empty or starting and ending with [a-zA-Z0-9],
# with [-_.a-zA-Z0-9] between. Every resource carries the stack name as its `kumomta-stack` label.
HCLOUD_LABEL_VALUE = re.compile(r"([a-zA-Z0-9]([-_.a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)?")


def parse(values: dict[str, Any], region: str | None = None, stack: str | None = None) -> Settings:
    """Validate decoded config, then what the clouds allow of it; raise ConfigError with one line per bad key."""
    # Imported here: the limits read the port matrix, which is built from Settings.
    from components import limits

    lines = []
    if region and not AWS_REGION.fullmatch(str(region)):
        # It is written into every AWS host's kumomta-sync command and the SSM parameters' ARNs.
        lines.append(f"aws:region: {region!r} is not an AWS region name such as eu-central-1")
        region = None
    try:
        settings = Settings.model_validate(values, by_name=False, context={"region": region})
    except ValidationError as err:
        raise ConfigError(_per_key([*lines, *(_line(e, values) for e in err.errors())])) from None
    problems = [*limits.check(settings), *_reachable(settings)]
    if settings.cloud == "hcloud" and stack is not None and not HCLOUD_LABEL_VALUE.fullmatch(stack):
        problems.append(
            f"cloud: the stack name {stack!r} can't label Hetzner resources (63 characters at most, starting and "
            "ending with a letter or digit); use another stack name"
        )
    if lines or problems:
        raise ConfigError(_per_key([*lines, *(f"{NAMESPACE}:{line}" for line in problems)]))
    return settings


def _reachable(settings: Settings) -> list[str]:
    """A host without an IPv6 address (`ipv6: false`) reaches only IPv4 servers: a resolver or time-server list of
    IPv6 addresses alone would leave it without DNS (DHCP's resolvers are switched off) or without a clock."""
    if settings.ipv6:
        return []
    out = []
    for key, nets in (("resolverCidrs", settings.resolver_cidrs), ("ntpCidrs", settings.ntp_cidrs)):
        if nets and all(n.version == 6 for n in nets):
            out.append(
                f"{key}: names IPv6 servers only, and the hosts have no IPv6 address (ipv6: false); add an IPv4 "
                "one, or set ipv6: true"
            )
    return out


def _per_key(lines) -> str:
    """One line per key, its reasons in order, each once: a key fixed once should not show up again."""
    reasons: dict[str, list[str]] = {}
    for line in lines:
        key, _, reason = line.partition(": ")
        if reason not in reasons.setdefault(key, []):
            reasons[key].append(reason)
    return "\n".join(f"{key}: {'; '.join(said)}" for key, said in reasons.items())


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field holds, through Optional, list, Annotated and unions."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _line(error: dict, values: dict[str, Any]) -> str:
    path = ""
    models: list[type[BaseModel]] = [Settings]  # where the next part of the location is a field
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("route53", "hcloud") and path == "dns":
            continue  # the discriminated-union branch name, not a key the user wrote
        else:
            # A default that fails (a required list left out) is located by its Python name; an unknown key, or
            # a key of a mapping such as hostAliases, by what the user wrote.
            field = next((f for m in models for n, f in m.model_fields.items() if part in (n, to_camel(n))), None)
            shown = to_camel(part) if field is not None and error["type"] != "extra_forbidden" else part
            models = _models_in(field.annotation) if field is not None else []
            path += f".{shown}" if path else shown
    reason = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        reason = "is required"
    elif error["type"] == "extra_forbidden":
        reason = _unknown_key(error["loc"])
    elif error["type"] == "list_type" and isinstance(error.get("input"), str):
        # `pulumi config set kumomta:adminCidrs 198.51.100.7/32` stores a string where a list belongs.
        reason = (
            f"must be a list; set one entry with `pulumi config set --path '{NAMESPACE}:{path}[0]' {error['input']}`"
            " (and [1], [2], ... for more), or write the list in the stack file"
        )
    key = f"{NAMESPACE}:{path}" if path else NAMESPACE
    return f"{key}: {reason}"


def _unknown_key(loc: tuple) -> str:
    """Say when an unknown key is a known one spelt as its Python name, or left over from the other DNS provider."""
    name = loc[-1]
    if len(loc) == 1 and isinstance(name, str) and "." in name:
        # `pulumi config set kumomta:aws.spoolVolumeGb 500` without --path makes a key with a dot in its name.
        return (
            f"is not a known setting: `pulumi config set` without --path made a key with a dot in its name; "
            f"use `pulumi config set --path '{NAMESPACE}:{name}' <value>` and remove this key"
        )
    models = {"aws": AwsSettings, "hcloud": HcloudSettings, "verify": VerifySettings}
    model = Settings if len(loc) == 1 else models.get(loc[0])
    if isinstance(name, str) and model is not None and name in model.model_fields:
        return f"is not a known setting; did you mean {to_camel(name)}? (keys are camelCase)"
    if len(loc) == 3 and loc[0] == "dns":
        other = Route53Dns if loc[1] == "hcloud" else HcloudDns
        if isinstance(name, str) and name in {to_camel(field) for field in other.model_fields}:
            provider = "route53" if other is Route53Dns else "hcloud"
            return f"is a setting of dns provider {provider}, not {loc[1]}; remove it (left over from a switch?)"
    return "is not a known setting (check the spelling)"
