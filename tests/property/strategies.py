"""Stack configs for the property test: a valid stack of either cloud, then hostile edits made to it.

A `Case` holds the stack-file values (`kumomta:<key>` and `aws:region`, as `Pulumi.<stack>.yaml` has them)
and the edits that made them. Each edit knows the top-level keys a refusal of it may name and, when the
program must refuse it whatever else the stack says, `must` (a bool where a number goes, a snake_case key,
a name with a newline, a guarded port opened to public space...). An edit that may well be fine (another
subnet, a bigger fleet) promises nothing: then only "clean either way" is asked of the program.

Domains and DKIM selectors come from small pools on purpose: the mocks derive a real RSA key for each
(domain, selector), at most a second each, and cache it for the process.
"""

import copy
import ipaddress
import os
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from hypothesis import strategies as st

# Top-level keys each cloud requires: a refusal may name them even when the stack file leaves them out.
REQUIRED = {
    "aws": {"cloud", "domain", "ping8Cidrs", "dns"},
    "hcloud": {"cloud", "domain", "ping8Cidrs", "dns", "deployCidrs"},
}
REGIONS = ("eu-central-1", "us-east-1", "ap-southeast-2")
# Spellings of the same few zones: a trailing dot and capitals are the same DNS name (RFC 4343).
DOMAINS = ("yourdomain.com", "YourDomain.COM.", "example.org", "mail.example.org")
LONG_DOMAIN = "a-rather-long-label-for-the-certificate-cn.yourdomain.com"  # 57 characters
SELECTORS = ("s202611", "kumomta")
HCLOUD_TYPES = {"cx": ("cx23", "cx33", "cx43"), "cpx": ("cpx11", "cpx21"), "cax": ("cax11",), "ccx": ("ccx13",)}
HCLOUD_FAMILIES = {
    "fsn1": ("cx", "cpx", "cax", "ccx"),
    "nbg1": ("cx", "cpx", "cax", "ccx"),
    "hel1": ("cx", "cpx", "cax", "ccx"),
    "ash": ("cpx", "ccx"),
    "hil": ("cpx", "ccx"),
    "sin": ("cpx", "ccx"),
}
# Ports the matrix already uses, and the proxy metrics default.
MATRIX_PORTS = (22, 25, 53, 80, 123, 443, 5000, 8000)
# Each n.0.0.0/8 here is globally routable throughout (IANA IPv4 Special-Purpose Address Registry): sources
# drawn inside them have a routable size known by construction, without the program's arithmetic.
ROUTABLE_OCTETS = [n for n in range(1, 100) if n != 10]
PUBLIC_THRESHOLD = 2**16  # an IPv4 /16's worth (README, "Policy pack")


@dataclass(frozen=True)
class Edit:
    """One change to a valid stack: which key, what, and what the program owes it."""

    key: str  # the key as the stack file spells it, `aws.spoolVolumeGb` for a nested one
    what: str
    names: frozenset[str]  # top-level keys a refusal of this edit may name
    must: bool = False  # the program must refuse the stack, whatever else it says
    local: bool = False  # its own key's validation refuses it, so a refusal names it even beside other errors
    exposure: bool = False  # opens a guarded port (22, metrics) to public address space
    depends: frozenset[str] = frozenset()  # stack-file keys its promise rests on (those it changed, at least)


@dataclass
class Case:
    cloud: str
    values: dict[str, Any]
    edits: list[Edit] = field(default_factory=list)

    @property
    def must_refuse(self) -> bool:
        return self.exposure or any(e.must for e in self.edits)

    @property
    def exposure(self) -> bool:
        """SSH or the proxy metrics opened to public space, judged from the final values (not the edits' word)."""
        return exposed(self.values)

    def describe(self) -> str:
        return "; ".join(f"{e.key}: {e.what}" for e in self.edits) or "valid"


# --- values ---------------------------------------------------------------------------------------------

LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


def _v4(value: int, prefix: int) -> str:
    """The IPv4 network of `prefix` bits around the address `value`."""
    return str(ipaddress.IPv4Network((value, prefix), strict=False))


def _v6(value: int, prefix: int) -> str:
    return str(ipaddress.IPv6Network((value, prefix), strict=False))


ANY_V4 = st.builds(_v4, st.integers(0, 2**32 - 1), st.integers(8, 32))
ANY_V6 = st.builds(_v6, st.integers(0, 2**128 - 1), st.integers(16, 128))
V4_HOST = st.builds(_v4, st.integers(2**24, 223 * 2**24), st.just(32))
V6_HOST = st.builds(lambda n: _v6((0x2A00 << 112) | n, 128), st.integers(0, 2**112 - 1))
# Sources that are never public: private ranges, and small routable ones (three /24s at most stay under a /16).
PRIVATE = st.one_of(
    st.builds(lambda n, p: _v4((10 << 24) | n, p), st.integers(0, 2**24 - 1), st.integers(8, 32)),
    st.builds(lambda n, p: _v4((192 << 24) | (168 << 16) | n, p), st.integers(0, 2**16 - 1), st.integers(16, 32)),
    st.builds(lambda n, p: _v6((0xFD << 120) | n, p), st.integers(0, 2**120 - 1), st.integers(8, 128)),
)
SMALL_ROUTABLE = st.builds(
    lambda octet, n, p: _v4((octet << 24) | n, p), st.sampled_from(ROUTABLE_OCTETS), st.integers(0, 2**24 - 1),
    st.integers(24, 32),
)  # fmt: skip
RESTRICTED = st.lists(st.one_of(PRIVATE, SMALL_ROUTABLE), min_size=1, max_size=3, unique=True)


def _ports() -> st.SearchStrategy:
    port = st.integers(1, 65535).filter(lambda p: p not in MATRIX_PORTS)
    return st.one_of(port, port.map(str), st.sampled_from([9101, "9200", 9464, 10250]))


TOKEN = st.from_regex(r"[A-Za-z0-9._~+/-]{32,64}={0,2}", fullmatch=True)


# --- a valid stack --------------------------------------------------------------------------------------


@st.composite
def valid_stack(draw, cloud: str | None = None) -> Case:
    """A stack as the README documents it, every key in its accepted spellings; most plan, some are refused (two
    lists drawn alike make duplicate rules, say), and neither is promised."""
    cloud = cloud or draw(st.sampled_from(["aws", "hcloud"]))
    domain = draw(st.sampled_from(DOMAINS))
    values: dict[str, Any] = {"kumomta:cloud": cloud, "kumomta:domain": domain}
    zone = domain.lower().rstrip(".")
    labels = draw(st.lists(LABEL, min_size=2, max_size=5, unique=True))
    split = draw(st.integers(1, len(labels) - 1))
    if draw(st.booleans()):
        values["kumomta:mtaHosts"] = labels[:split]
    if draw(st.booleans()):
        values["kumomta:proxyHosts"] = labels[split:]
    hosts = [*values.get("kumomta:mtaHosts", ["mta"]), *values.get("kumomta:proxyHosts", ["proxy"])]
    values["kumomta:ping8Cidrs"] = draw(st.lists(st.one_of(ANY_V4, ANY_V6), min_size=1, max_size=3, unique=True))
    optional = {
        "kumomta:trustedCidrs": st.lists(st.one_of(ANY_V4, ANY_V6), max_size=3, unique=True),
        "kumomta:resolverCidrs": st.lists(st.one_of(V4_HOST, V6_HOST), min_size=1, max_size=3, unique=True),
        "kumomta:ntpCidrs": st.one_of(
            st.lists(st.one_of(V4_HOST, V6_HOST), min_size=1, max_size=3, unique=True),
            st.sampled_from([["0.0.0.0/0"], ["0.0.0.0/0", "::/0"], ["::/0"]]),
            st.just([]) if cloud == "aws" else st.nothing(),
        ),
        "kumomta:monitoringCidrs": st.one_of(st.just([]), RESTRICTED),
        "kumomta:proxyMetricsPort": _ports(),
        "kumomta:adminCidrs": st.one_of(st.just([]), RESTRICTED),
        "kumomta:packageEgress": st.booleans(),
        "kumomta:ipv6": st.booleans(),
        "kumomta:injectToken": TOKEN,
        "kumomta:verify": st.fixed_dictionaries(
            {}, optional={"testMx": st.sampled_from(["mx.example.net", "192.0.2.25"]),
                          "webhookUrl": st.just("https://app.example.net/hooks/kumo")}
        ),
        "kumomta:dkim": st.fixed_dictionaries(
            {}, optional={
                "selectors": st.lists(
                    st.fixed_dictionaries({"name": st.sampled_from(SELECTORS)}, optional={"signFrom": st.sampled_from(
                        ["2026-11-01", "2026-11-01T12:00:00Z", "2027-01-01T00:00:00+14:00"])}),
                    min_size=1, max_size=2, unique_by=lambda s: s["name"]),
                "ed25519": st.booleans(),
                "publish": st.booleans(),
            }
        ),
        "kumomta:spf": st.fixed_dictionaries(
            {}, optional={"publish": st.booleans(), "include": st.lists(
                st.sampled_from(["include:_spf.google.com", "ip4:192.0.2.0/24", "mx", "a", "ip6:2001:db8::/32"]),
                max_size=3, unique=True)}
        ),
        "kumomta:dmarc": st.fixed_dictionaries(
            {}, optional={"publish": st.booleans(), "policy": st.sampled_from(["none", "quarantine", "reject"]),
                          "rua": st.just(f"mailto:dmarc@{zone}")}
        ),
    }  # fmt: skip
    for key, strategy in optional.items():
        if draw(st.booleans()):
            values[key] = draw(strategy)
    if draw(st.integers(0, 4)) == 0:
        old = draw(st.lists(LABEL.filter(lambda x: x not in hosts), min_size=1, max_size=2, unique=True))
        values["kumomta:hostAliases"] = dict(zip(draw(st.permutations(hosts)), old, strict=False))
    if cloud == "aws":
        region = draw(st.sampled_from(REGIONS))
        values["aws:region"] = region
        values["kumomta:dns"] = {
            "provider": "route53",
            "zoneId": draw(st.from_regex(r"Z[0-9A-Z]{1,32}", fullmatch=True)),
        }
        values["kumomta:aws"] = draw(_aws_section(region))
    else:
        values["kumomta:deployCidrs"] = draw(RESTRICTED)
        if draw(st.integers(0, 3)) == 0:
            values["kumomta:dns"] = {"provider": "route53", "zoneId": "Z0123456789ABCDEFGHIJ"}
            values["aws:region"] = draw(st.sampled_from(REGIONS))
        else:
            parents = [zone] + ([zone.split(".", 1)[1]] if zone.count(".") > 1 else [])
            values["kumomta:dns"] = {"provider": "hcloud", "zone": draw(st.sampled_from(parents))}
            if draw(st.booleans()):
                values["kumomta:dns"]["create"] = draw(st.booleans())
        values["kumomta:hcloud"] = draw(_hcloud_section())
    return Case(cloud, values)


# Networks that hold a role's subnets: (network, mta subnet, proxy subnet).
AWS_NETWORKS = [
    ("10.42.0.0/16", "10.42.1.0/24", "10.42.2.0/24"),
    ("172.20.0.0/20", "172.20.0.0/24", "172.20.8.0/22"),
    ("192.168.7.0/24", "192.168.7.0/28", "192.168.7.16/28"),
]
HCLOUD_NETWORKS = [
    ("10.43.0.0/16", "10.43.1.0/24", "10.43.2.0/24"),
    ("172.16.0.0/12", "172.16.0.0/20", "172.31.255.0/24"),
    ("192.168.9.0/24", "192.168.9.0/27", "192.168.9.64/26"),
]


@st.composite
def _aws_section(draw, region: str) -> dict:
    section: dict[str, Any] = {}
    choices = {
        "availabilityZone": st.sampled_from([f"{region}a", f"{region}b"]),
        "mtaInstanceType": st.sampled_from(["c6i.xlarge", "m7g.xlarge", "c7gn.2xlarge"]),
        "proxyInstanceType": st.sampled_from(["t3.small", "t4g.small", "u-6tb1.metal"]),
        "amiId": st.sampled_from(["ami-0123456789abcdef0", "ami-12345678"]),
        "rootVolumeGb": st.one_of(st.integers(8, 16384), st.integers(8, 16384).map(str)),
        "spoolVolumeGb": st.one_of(st.integers(1, 16384), st.integers(1, 16384).map(str)),
        "deployerArns": st.lists(
            st.sampled_from(["arn:aws:iam::123456789012:role/deploy", "arn:aws:iam::123456789012:user/ops/alice"]),
            max_size=2, unique=True),
    }  # fmt: skip
    for key, strategy in choices.items():
        if draw(st.booleans()):
            section[key] = draw(strategy)
    network = draw(st.integers(0, len(AWS_NETWORKS)))
    if network < len(AWS_NETWORKS):
        if network or draw(st.booleans()):
            section.update(zip(("vpcCidr", "mtaSubnetCidr", "proxySubnetCidr"), AWS_NETWORKS[network], strict=True))
    else:
        section.update(vpcId="vpc-0123456789abcdef0", subnetId="subnet-0123456789abcdef0")
    return section


@st.composite
def _hcloud_section(draw) -> dict:
    location = draw(st.sampled_from(sorted(HCLOUD_FAMILIES)))
    offered = [t for family in HCLOUD_FAMILIES[location] for t in HCLOUD_TYPES[family]]
    section: dict[str, Any] = {}
    if draw(st.booleans()) or location not in ("fsn1", "nbg1", "hel1"):
        section["location"] = location
        section["mtaServerType"] = draw(st.sampled_from(offered))
        section["proxyServerType"] = draw(st.sampled_from(offered))
    choices = {
        "image": st.just("ubuntu-22.04"),
        "backups": st.just(False),
        "deleteProtection": st.booleans(),
        "spoolVolumeGb": st.one_of(st.integers(10, 10240), st.integers(10, 10240).map(str)),
        "sshKeys": st.lists(st.sampled_from(["ops", "alice@laptop", "4711"]), max_size=2, unique=True),
    }
    for key, strategy in choices.items():
        if draw(st.booleans()):
            section[key] = draw(strategy)
    if draw(st.booleans()):
        section.update(zip(("networkCidr", "mtaSubnetCidr", "proxySubnetCidr"), draw(st.sampled_from(HCLOUD_NETWORKS)),
                           strict=True))  # fmt: skip
    return section


# --- hostile edits --------------------------------------------------------------------------------------

# Every key of components/settings.py's models, by kind, as the stack file spells it.
NUMBERS = ["proxyMetricsPort", "aws.rootVolumeGb", "aws.spoolVolumeGb", "hcloud.spoolVolumeGb"]
FLAGS = ["packageEgress", "ipv6", "hcloud.deleteProtection", "dkim.ed25519", "dkim.publish", "spf.publish",
         "dmarc.publish"]  # fmt: skip
CIDR_LISTS = ["ping8Cidrs", "trustedCidrs", "resolverCidrs", "ntpCidrs", "monitoringCidrs", "adminCidrs", "deployCidrs"]
CIDRS = ["aws.vpcCidr", "aws.mtaSubnetCidr", "aws.proxySubnetCidr", "hcloud.networkCidr", "hcloud.mtaSubnetCidr",
         "hcloud.proxySubnetCidr"]  # fmt: skip
TEXTS = ["cloud", "domain", "injectToken", "aws.mtaInstanceType", "aws.proxyInstanceType", "hcloud.location",
         "hcloud.mtaServerType", "hcloud.proxyServerType", "hcloud.image", "dmarc.policy"]  # fmt: skip
OPTIONAL_TEXTS = ["aws.availabilityZone", "aws.amiId", "aws.vpcId", "aws.subnetId", "dmarc.rua", "verify.testMx",
                  "verify.webhookUrl"]  # fmt: skip
LISTS = ["mtaHosts", "proxyHosts", "aws.deployerArns", "hcloud.sshKeys", "spf.include", "dkim.selectors",
         "dkim.domains", *CIDR_LISTS]  # fmt: skip
SECTIONS = ["aws", "hcloud", "dns", "dkim", "spf", "dmarc", "verify", "hostAliases", "hcloud.privateIps"]
NULLABLE = {"resolverCidrs", "ntpCidrs", "injectToken", "dkim.domains", *OPTIONAL_TEXTS}
# Every camelCase key and its Python name, which the stack file may not use.
CAMEL = {
    "": ["mtaHosts", "proxyHosts", "ping8Cidrs", "trustedCidrs", "resolverCidrs", "ntpCidrs", "monitoringCidrs",
         "proxyMetricsPort", "adminCidrs", "deployCidrs", "hostAliases", "packageEgress", "injectToken"],
    "aws": ["availabilityZone", "mtaInstanceType", "proxyInstanceType", "amiId", "rootVolumeGb", "spoolVolumeGb",
            "vpcCidr", "mtaSubnetCidr", "proxySubnetCidr", "vpcId", "subnetId", "deployerArns"],
    "hcloud": ["mtaServerType", "proxyServerType", "deleteProtection", "spoolVolumeGb", "networkCidr",
               "mtaSubnetCidr", "proxySubnetCidr", "sshKeys", "privateIps"],
    "dns": ["zoneId"],
    "verify": ["testMx", "webhookUrl"],
}  # fmt: skip

# A number as Python (or YAML 1.1) would read it but the stack's strict grammar does not.
BAD_NUMBERS = [True, False, "+9200", "9_101", "0x238d", "1e3", 9101.5, 9101.0, "9101.0", "-9101", "9101/tcp", "",
               " ", [9101], {"port": 9101}, None, "true", "null",
               "\uff19\uff11\uff10\uff11", "\u0669\u0661\u0660\u0661"]  # full-width and Arabic-Indic digits  # fmt: skip
BAD_FLAGS = ["yes", "no", 1, 0, "on", "True", "FALSE", None, [], {}, "1"]
# Not a network a firewall can name, or not the network meant.
BAD_CIDRS = ["fe80::1%eth0/128", "fe80::%25eth0/64", "203.0.113.300/32", "10.0.0.1/8", "10.0.0.0/33", "", "any",
             "203.0.113.10/32\n", " 203.0.113.10/32", "203.0.113.010/32", "::ffff:203.0.113.10/129",
             "2001:db8::/32/1", 3232235777, None, True, ["10.0.0.0/8"], {"cidr": "10.0.0.0/8"}]  # fmt: skip
BAD_LABELS = ["mta\n", "proxy\n", "MTA", "-mta", "mta-", "m_a", "", " mta", "mta.one", "mtä", "m" * 64, "mta\r",
              "mta\t", "*", "mta;rm", "mta'", 'mta"', "mta\\", 7, None, True, ["mta"]]  # fmt: skip
BAD_DOMAINS = ["192.0.2.1", "mail.example.123", "com", "example..com", "-example.com", "exa mple.com",
               "exa\nmple.com", "[::1]", "例え.jp", f"{'a' * 64}.com", ".".join(["abcdefghij"] * 24) + ".com",
               "example.com..", "ex_ample.com", "*.example.com", "", 7, None]  # fmt: skip
BAD_TEXTS = [7, 7.5, True, None, [], {}, ["x"], "", " ", "x\n"]
PUBLIC_SINGLE = ["0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "2000::/3", "2a00::/16", "11.0.0.0/8",
                 "44.0.0.0/16", "2001::/16"]  # fmt: skip
JUNK_KEYS = ["kumomta:mtaHost", "kumomta:Domain", "kumomta:", "kumomta:a:b", "kumomta:aws.spoolVolumeGb",
             "kumomta:proxyMetricsPort ", "kumomta:ping8cidrs", "kumomta:0"]  # fmt: skip


def _get(values: dict, key: str) -> Any:
    section, _, name = key.partition(".")
    value = values.get(f"kumomta:{section}")
    return value.get(name) if name and isinstance(value, dict) else (None if name else value)


def _set(values: dict, key: str, value: Any, remove: bool = False) -> None:
    section, _, name = key.partition(".")
    if not name:
        if remove:
            values.pop(f"kumomta:{section}", None)
        else:
            values[f"kumomta:{section}"] = value
        return
    current = values.get(f"kumomta:{section}")
    current = dict(current) if isinstance(current, dict) else {}
    if remove:
        current.pop(name, None)
    else:
        current[name] = value
    values[f"kumomta:{section}"] = current


# Stack-file keys a cross-key edit's promise rests on besides those it changes.
_ON_CLOUD = frozenset({"kumomta:cloud"})
_HOSTS = frozenset({"kumomta:mtaHosts", "kumomta:proxyHosts"})


def _list(case: Case, key: str, default: list | None = None) -> list:
    """A list of the stack (`aws.deployerArns` for a nested one), or `default` when it is unset or not a list."""
    value = _get(case.values, key)
    return list(value) if isinstance(value, list) else list(default or [])


def _network(text: Any, default: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text)
    except (TypeError, ValueError):
        return ipaddress.ip_network(default)


def _section(case: Case, name: str) -> dict:
    """A section of the stack as a dict, {} when an earlier edit made it something else."""
    value = case.values.get(f"kumomta:{name}")
    return value if isinstance(value, dict) else {}


def _root(key: str) -> str:
    return key.partition(".")[0]


def _applies(case: Case, key: str) -> bool:
    """Edits go to keys the stack's cloud reads: its own section, and `deployCidrs` on Hetzner only."""
    root = _root(key)
    if root in ("aws", "hcloud") and root != case.cloud:
        return False
    return not (root == "deployCidrs" and case.cloud != "hcloud")


@st.composite
def wrong_type(draw, case: Case) -> Edit | None:
    """A value of the wrong kind for its key: a bool or "+9200" for a number, "yes" for a flag, a string for a list."""
    kind = draw(st.sampled_from(["number", "flag", "cidr", "text", "list", "section"]))
    keys = {"number": NUMBERS, "flag": FLAGS, "cidr": CIDRS, "text": TEXTS + OPTIONAL_TEXTS, "list": LISTS,
            "section": SECTIONS}[kind]  # fmt: skip
    key = draw(st.sampled_from([k for k in keys if _applies(case, k)]))
    if kind == "number":
        value = draw(st.sampled_from(BAD_NUMBERS))
    elif kind == "flag":
        value = draw(st.sampled_from(BAD_FLAGS))
    elif kind == "cidr":
        value = draw(st.sampled_from(BAD_CIDRS))
    elif kind == "text":
        value = draw(st.sampled_from([v for v in BAD_TEXTS if not isinstance(v, str) or key in TEXTS]))
    elif kind == "list":
        value = draw(st.sampled_from(["203.0.113.10/32", "mta", 7, True, {"a": 1}, [[1]], [None]]))
    else:
        value = draw(st.sampled_from(["x", 7, True, ["x"], [{"a": 1}]]))
    if value is None and key in NULLABLE:
        return None  # null is "unset" there
    _set(case.values, key, value)
    return Edit(key, f"{value!r}", frozenset({_root(key)}), must=True, local=True)


@st.composite
def python_name(draw, case: Case) -> Edit | None:
    """The field's Python name (or another spelling) instead of the documented camelCase key."""
    section = draw(st.sampled_from([s for s in CAMEL if not s or _applies(case, s)]))
    name = draw(st.sampled_from(CAMEL[section]))
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
    spelled = draw(st.sampled_from([snake, snake.replace("_", "-"), snake.upper(), name.lower()]))
    if spelled == name:
        return None
    value = draw(st.sampled_from([9200, "203.0.113.7/32", ["203.0.113.7/32"], True, "x"]))
    key = f"{section}.{spelled}" if section else spelled
    _set(case.values, key, value)
    return Edit(key, f"spelt {spelled} for {name}", frozenset({section or spelled}), must=True, local=True)


@st.composite
def junk_key(draw, case: Case) -> Edit:
    """Keys no model has: typos, another case, an empty name, a Pulumi path written as a key."""
    key = draw(st.sampled_from(JUNK_KEYS))
    case.values[key] = draw(st.sampled_from([1, "x", ["203.0.113.7/32"], {"a": 1}]))
    name = key.partition(":")[2]
    return Edit(key, "unknown key", frozenset({name, _root(name), ""}), must=True, local=True)


@st.composite
def bad_name(draw, case: Case) -> Edit:
    """A host label outside RFC 1123's grammar: newlines, capitals, hyphens at the ends, other types."""
    key = draw(st.sampled_from(["mtaHosts", "proxyHosts"]))
    current = _list(case, key, ["mta"] if key == "mtaHosts" else ["proxy"])
    bad = draw(st.sampled_from(BAD_LABELS))
    current.insert(draw(st.integers(0, len(current))), bad)
    _set(case.values, key, current)
    return Edit(key, f"a host named {bad!r}", frozenset({key}), must=True, local=True)


@st.composite
def long_name(draw, case: Case) -> Edit:
    """An MTA's FQDN is its certificate's CN (at most 64, RFC 5280 ub-common-name); any FQDN at most 253."""
    key = draw(st.sampled_from(["mtaHosts", "proxyHosts"]))
    domain = draw(st.sampled_from([LONG_DOMAIN, ".".join(["abcdefghij-abcdefghij"] * 10) + ".yourdomain.com"]))
    case.values["kumomta:domain"] = domain
    if _section(case, "dns").get("provider") == "hcloud":
        case.values["kumomta:dns"] = {**case.values["kumomta:dns"], "zone": "yourdomain.com"}
    limit = 64 if key == "mtaHosts" else 253
    label = draw(st.sampled_from(["m" * n for n in (1, 6, 7, 8, 30, 63)]))
    _set(case.values, key, [label])
    too_long = len(f"{label}.{domain}") > limit or len(domain) > 253
    other = "proxyHosts" if key == "mtaHosts" else "mtaHosts"
    first_other = next(iter(_list(case, other, ["proxy" if other == "proxyHosts" else "mta"])), "p")
    if len(f"{first_other}.{domain}") > (253 if key == "mtaHosts" else 64):
        _set(case.values, other, ["p"] if key == "mtaHosts" else ["m"])
    return Edit(key, f"{label}.{domain} ({len(label) + 1 + len(domain)} characters)", frozenset({key, "domain"}),
                must=too_long, depends=frozenset({"kumomta:mtaHosts", "kumomta:proxyHosts", "kumomta:domain"}))  # fmt: skip


@st.composite
def bad_domain(draw, case: Case) -> Edit:
    """Not a DNS name: an IP address, an all-numeric TLD, empty labels, over 63 or 253 characters."""
    value = draw(st.sampled_from(BAD_DOMAINS))
    case.values["kumomta:domain"] = value
    return Edit("domain", repr(value), frozenset({"domain"}), must=True, local=True)


@st.composite
def bad_cidr(draw, case: Case) -> Edit | None:
    """An entry no firewall can name: IPv6 zone indexes, host bits set, whitespace, numbers, lists."""
    key = draw(st.sampled_from([k for k in CIDR_LISTS if _applies(case, k)]))
    current = _list(case, key)
    bad = draw(st.sampled_from(BAD_CIDRS))
    current.insert(draw(st.integers(0, len(current))), bad)
    _set(case.values, key, current)
    return Edit(key, f"lists {bad!r}", frozenset({key}), must=True, local=True)


@st.composite
def duplicate(draw, case: Case) -> Edit | None:
    """The same network twice, in one list (or spelt twice), or in two lists that make the same rule."""
    key = draw(st.sampled_from([k for k in CIDR_LISTS if _applies(case, k)]))
    address = draw(st.sampled_from(["198.51.100.7", "10.9.8.7", "2001:db8::7"]))
    suffix = "/128" if ":" in address else "/32"
    how = draw(st.sampled_from(["twice", "spelt twice", "in another list"]))
    if how == "in another list":
        pairs = {"ping8Cidrs": "trustedCidrs", "adminCidrs": "deployCidrs"}
        if key not in pairs or not _applies(case, pairs[key]):
            return None
        for k in (key, pairs[key]):
            _set(case.values, k, [*_list(case, k), address + suffix])
        return Edit(key, f"{address} also in {pairs[key]}", frozenset({key, pairs[key]}), must=True, depends=_ON_CLOUD)
    second = address if how == "spelt twice" else address + suffix
    _set(case.values, key, [*_list(case, key), address + suffix, second])
    return Edit(key, f"{address} {how}", frozenset({key}), must=True, local=True)


def exposed(values: dict) -> bool:
    """Whether a guarded port (22 from adminCidrs and, on Hetzner, deployCidrs; the proxy metrics from
    monitoringCidrs) admits a public amount of address space, counted with the oracle's own arithmetic over the
    sources this module draws: the PUBLIC_SINGLE ones, and addresses in ROUTABLE_OCTETS, the rest not counted."""

    def sources(key: str) -> list:
        value = values.get(f"kumomta:{key}")
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    ssh = sources("adminCidrs") + (sources("deployCidrs") if values.get("kumomta:cloud") == "hcloud" else [])
    return any(_public(group) for group in (ssh, sources("monitoringCidrs"), sources("deployCidrs")))


def _public(cidrs: list[str]) -> bool:
    if any(c in PUBLIC_SINGLE for c in cidrs):
        return True
    blocks = []
    for text in cidrs:
        try:
            net = ipaddress.ip_network(text)
        except ValueError:
            continue
        if net.version == 4 and int(net.network_address) >> 24 in ROUTABLE_OCTETS and net.prefixlen >= 8:
            start = int(net.network_address)
            blocks.append((start, start + net.num_addresses))
    return _merged(blocks) >= PUBLIC_THRESHOLD


def _merged(blocks: list[tuple[int, int]]) -> int:
    """Addresses covered by the union of [start, end) intervals: the oracle's own arithmetic."""
    total, reach = 0, -1
    for start, end in sorted(blocks):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


@st.composite
def exposure(draw, case: Case) -> Edit:
    """Sources of SSH or the proxy metrics: public alone, or adding up to public inside routable /8s."""
    keys = ["adminCidrs", "monitoringCidrs"] + (
        ["deployCidrs", "adminCidrs+deployCidrs"] if case.cloud == "hcloud" else []
    )
    key = draw(st.sampled_from(keys))
    how = draw(st.sampled_from(["one", "adding up", "adding up", "below"]))
    if how == "one":
        sources, public = [draw(st.sampled_from(PUBLIC_SINGLE))], True
    else:
        octet = draw(st.sampled_from(ROUTABLE_OCTETS))
        prefix = draw(st.integers(17, 20))
        size = 2 ** (32 - prefix)
        count = draw(st.integers(2, 2 ** (prefix - 16) + 1)) if how == "adding up" else draw(st.integers(1, 3))
        starts = draw(st.lists(st.integers(0, 2 ** (prefix - 8) - 1), min_size=count, max_size=count, unique=True))
        blocks = [((octet << 24) + i * size, (octet << 24) + (i + 1) * size) for i in starts]
        sources = [_v4(start, prefix) for start, _ in blocks]
        public = _merged(blocks) >= PUBLIC_THRESHOLD
    if key == "adminCidrs+deployCidrs":
        if len(sources) < 2:
            return draw(exposure(case))
        cut = draw(st.integers(1, len(sources) - 1))
        _set(case.values, "adminCidrs", sources[:cut])
        _set(case.values, "deployCidrs", sources[cut:])
        names = frozenset({"adminCidrs", "deployCidrs"})
    else:
        _set(case.values, key, sources)
        names = frozenset({key})
    what = f"{len(sources)} sources ({sources[0]}...), {'public' if public else 'below a /16'} together"
    return Edit(key, what, names, exposure=public)


@st.composite
def huge_list(draw, case: Case) -> Edit:
    """More rules than a security group (60 per direction) or a Hetzner rule (100 addresses) holds."""
    key = draw(st.sampled_from(["ping8Cidrs", "trustedCidrs", "resolverCidrs", "ntpCidrs"]))
    count = draw(st.sampled_from([55, 61, 101, 150, 400]))
    start = draw(st.integers(1, 200)) << 24
    _set(case.values, key, [_v4(start + i, 32) for i in range(count)])
    # Hetzner: one rule of at most 100 addresses (API, Firewalls); AWS: 60 rules per group and direction.
    must = count > (100 if case.cloud == "hcloud" else 60)
    return Edit(key, f"{count} addresses", frozenset({key, "aws", "hcloud"}), must=must, depends=_ON_CLOUD)


@st.composite
def fleet(draw, case: Case) -> Edit:
    """Many hosts: refused when a subnet can't hold them (AWS keeps 5 addresses of each, VPC User Guide)."""
    key = draw(st.sampled_from(["mtaHosts", "proxyHosts"]))
    count = draw(st.sampled_from([6, 246, 252, 300, 400]))
    other = "proxyHosts" if key == "mtaHosts" else "mtaHosts"
    _set(case.values, other, ["p" if key == "mtaHosts" else "m"])
    case.values.pop("kumomta:hostAliases", None)
    section = _section(case, case.cloud)
    subnet = _network(section.get("mtaSubnetCidr" if key == "mtaHosts" else "proxySubnetCidr"), "10.0.0.0/24")
    if case.cloud == "aws":
        room = subnet.num_addresses - 5 if "vpcId" not in section else 2**32
    else:
        room = subnet.num_addresses  # whatever addresses the program keeps back
    if count <= room:
        # The mocks take ~0.1 s a host: the fleets the tools check stay small, or fill a small subnet exactly
        # (the offline plan's stand-in addresses must not run out where the cloud has room).
        count = room if room <= 16 and draw(st.booleans()) else 6
    _set(case.values, key, [f"{key[0]}{i}" for i in range(count)])
    return Edit(key, f"{count} hosts", frozenset({key, "aws", "hcloud"}), must=count > room,
                depends=_ON_CLOUD | {"kumomta:aws", "kumomta:hcloud"})  # fmt: skip


@st.composite
def network_shape(draw, case: Case) -> Edit | None:
    """Networks and subnets of any size and place: too big, too small, outside the network, overlapping."""
    section = case.cloud
    key = draw(st.sampled_from(["vpcCidr" if section == "aws" else "networkCidr", "mtaSubnetCidr", "proxySubnetCidr"]))
    base = draw(st.sampled_from([10 << 24, (172 << 24) | (16 << 16), (192 << 24) | (168 << 16), 8 << 24]))
    value = _v4(base | draw(st.integers(0, 2**16 - 1)) << 8, draw(st.integers(8, 32)))
    _set(case.values, f"{section}.{key}", value)
    if section == "aws" and "vpcId" in _section(case, "aws"):
        return Edit(f"aws.{key}", value, frozenset({"aws"}))
    net = ipaddress.ip_network(value)
    must = section == "aws" and not 16 <= net.prefixlen <= 28  # AWS VPC User Guide: /16 to /28
    must = must or (section == "hcloud" and not any(net.subnet_of(ipaddress.ip_network(p)) for p in
                                                   ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")))  # fmt: skip
    return Edit(f"{section}.{key}", value, frozenset({section}), must=must)


@st.composite
def placement(draw, case: Case) -> Edit | None:
    """Zones of another region, server types where Hetzner doesn't offer them, images KumoMTA doesn't package."""
    if case.cloud == "aws":
        region = case.values.get("aws:region")
        what = draw(st.sampled_from(["zone", "region", "instance"]))
        if what == "zone":
            other = draw(st.sampled_from([r for r in REGIONS if r != region]))
            zone = draw(st.sampled_from([f"{other}a", f"{region}", f"{region}A", f"{region}-", "a"]))
            _set(case.values, "aws.availabilityZone", zone)
            return Edit("aws.availabilityZone", zone, frozenset({"aws"}), must=True, depends=frozenset({"aws:region"}))
        if what == "region":
            # Missing or empty: the AWS provider falls back to AWS_REGION / AWS_DEFAULT_REGION. A region with a
            # space, newline or quote would be written into the hosts' unit files and commands.
            value = draw(st.sampled_from(["", None, "eu-central-1\n", "eu central 1", "eu-central-1'"]))
            if value is None:
                case.values.pop("aws:region", None)
            else:
                case.values["aws:region"] = value
            unset = not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
            return Edit("aws:region", repr(value), frozenset({"aws:region", "aws"}), must=bool(value) or unset)
        value = draw(st.sampled_from(["", "t3", "T3.small", "t3.small\n", "t3.small ", "c6i.xlarge;", "t3..small"]))
        key = draw(st.sampled_from(["aws.mtaInstanceType", "aws.proxyInstanceType"]))
        _set(case.values, key, value)
        return Edit(key, repr(value), frozenset({"aws"}), must=True, local=True)
    what = draw(st.sampled_from(["location", "type", "image", "volume", "backups"]))
    if what == "location":
        value = draw(st.sampled_from(["FSN1", "fsn2", "eu-central", "", "fsn1 "]))
        _set(case.values, "hcloud.location", value)
        return Edit("hcloud.location", repr(value), frozenset({"hcloud"}), must=True, local=True)
    if what == "type":
        location = draw(st.sampled_from(["ash", "hil", "sin"]))
        _set(case.values, "hcloud.location", location)
        key = draw(st.sampled_from(["hcloud.mtaServerType", "hcloud.proxyServerType"]))
        value = draw(st.sampled_from(["cx33", "cax11", "cx23", "", "CPX11"]))
        _set(case.values, key, value)
        other = "hcloud.proxyServerType" if key == "hcloud.mtaServerType" else "hcloud.mtaServerType"
        _set(case.values, other, "cpx21")
        return Edit(key, f"{value!r} in {location}", frozenset({"hcloud"}), must=True)
    if what == "image":
        value = draw(st.sampled_from(["ubuntu-24.04", "debian-12", "Ubuntu-22.04", "ubuntu-22.04 ", ""]))
        _set(case.values, "hcloud.image", value)
        return Edit("hcloud.image", repr(value), frozenset({"hcloud"}), must=True, local=True)
    if what == "volume":
        value = draw(st.sampled_from([9, 10241, 0, -1, 2**70]))
        _set(case.values, "hcloud.spoolVolumeGb", value)
        return Edit("hcloud.spoolVolumeGb", repr(value), frozenset({"hcloud"}), must=True, local=True)
    _set(case.values, "hcloud.backups", True)
    return Edit("hcloud.backups", "true", frozenset({"hcloud"}), must=True, local=True)


@st.composite
def dns_edit(draw, case: Case) -> Edit:
    what = draw(st.sampled_from(["zoneId", "zone", "provider", "mixed"]))
    if what == "zoneId":
        value = draw(st.sampled_from(["z123", "Z" + "A" * 33, "Z123\n", "/hostedzone/Z123", "Z-123", "", 12, None]))
        case.values["kumomta:dns"] = {"provider": "route53", "zoneId": value}
        if case.cloud == "hcloud":
            case.values.setdefault("aws:region", "eu-central-1")
        return Edit("dns.zoneId", repr(value), frozenset({"dns"}), must=True, local=True)
    if what == "zone":
        value = draw(st.sampled_from(["example.net", "com", "", "yourdomain.com\n", "other.yourdomain.com"]))
        case.values["kumomta:dns"] = {"provider": "hcloud", "zone": value}
        domain = str(case.values.get("kumomta:domain")).lower().rstrip(".")
        holds = domain == value or domain.endswith(f".{value}")
        return Edit("dns.zone", repr(value), frozenset({"dns"}), must=not holds or value in ("", "com"),
                    depends=frozenset({"kumomta:domain"}))  # fmt: skip
    if what == "provider":
        value = draw(st.sampled_from(["Route53", "cloudflare", "", None, 7]))
        case.values["kumomta:dns"] = {"provider": value, "zoneId": "Z1", "zone": "yourdomain.com"}
        return Edit("dns.provider", repr(value), frozenset({"dns"}), must=True, local=True)
    case.values["kumomta:dns"] = {"provider": "hcloud", "zone": "yourdomain.com", "zoneId": "Z1"}
    return Edit("dns", "keys of both providers", frozenset({"dns"}), must=True, local=True)


@st.composite
def mail_edit(draw, case: Case) -> Edit:
    """DKIM selectors and domains, SPF mechanisms and DMARC values that DNS or receivers would refuse."""
    what = draw(st.sampled_from(["selector", "signFrom", "domains", "spf", "dmarc", "rua"]))
    if what == "selector":
        value = draw(st.sampled_from(["S1", "s 1", "s1.", "-s", "s" * 64, "s1\n", "", 7, "s1'", "s1;rm"]))
        case.values["kumomta:dkim"] = {"selectors": [{"name": value}]}
        return Edit("dkim.selectors", repr(value), frozenset({"dkim"}), must=True, local=True)
    if what == "signFrom":
        value = draw(st.sampled_from(["tomorrow", True, {}, [], "2026-13-01", "2026-11-01T25:00:00Z"]))
        case.values["kumomta:dkim"] = {"selectors": [{"name": "s202611", "signFrom": value}]}
        return Edit("dkim.selectors", f"signFrom {value!r}", frozenset({"dkim"}), must=True, local=True)
    if what == "domains":
        value = draw(st.sampled_from([["example.net"], ["192.0.2.1"], [""], "yourdomain.com", [7]]))
        case.values["kumomta:dkim"] = {"domains": value}
        outside = _section(case, "dns").get("provider") == "hcloud" and value == ["example.net"]
        return Edit("dkim.domains", repr(value), frozenset({"dkim"}), must=value != ["example.net"] or outside,
                    depends=frozenset({"kumomta:dns"}))  # fmt: skip
    if what == "spf":
        value = draw(st.sampled_from(["all", "-all", "~all", "include:", "include:a b", "redirect=x.example",
                                      'ip4:"', "v=spf1", "", 7]))  # fmt: skip
        case.values["kumomta:spf"] = {"include": [value]}
        return Edit("spf.include", repr(value), frozenset({"spf"}), must=True, local=True)
    if what == "dmarc":
        value = draw(st.sampled_from(["REJECT", "none ", "p=none", "", 1, None]))
        case.values["kumomta:dmarc"] = {"policy": value}
        return Edit("dmarc.policy", repr(value), frozenset({"dmarc"}), must=True, local=True)
    value = draw(st.sampled_from(["dmarc@yourdomain.com", "mailto:", "mailto:a@b;c@d", "mailto:a b@c", "mailto:@x"]))
    case.values["kumomta:dmarc"] = {"rua": value}
    return Edit("dmarc.rua", repr(value), frozenset({"dmarc"}), must=True, local=True)


@st.composite
def alias_edit(draw, case: Case) -> Edit:
    hosts = [*_list(case, "mtaHosts", ["mta"]), *_list(case, "proxyHosts", ["proxy"])]
    hosts = [h for h in hosts if isinstance(h, str)] or ["mta"]
    what = draw(st.sampled_from(["not a host", "still a host", "taken twice", "bad label"]))
    if what == "not a host":
        aliases = {"nosuchhost": "old"}
    elif what == "still a host" or len(hosts) < 2:
        aliases = {hosts[0]: hosts[-1]} if len(hosts) > 1 else {hosts[0]: hosts[0]}
    elif what == "taken twice":
        aliases = {hosts[0]: "old", hosts[1]: "old"}
    else:
        aliases = {hosts[0]: draw(st.sampled_from(BAD_LABELS))}
    case.values["kumomta:hostAliases"] = aliases
    return Edit("hostAliases", f"{what}: {aliases!r}", frozenset({"hostAliases"}), must=True, depends=_HOSTS)


@st.composite
def token_edit(draw, case: Case) -> Edit:
    value = draw(st.sampled_from(["short", "a" * 129, "a" * 31, "a" * 40 + " ", "a" * 40 + '"', "a" * 40 + "\n",
                                  "a" * 40 + "$", "a" * 40 + "{", "a" * 40 + ";", "=" + "a" * 40, "a" * 40 + "=a",
                                  "ä" * 40, 12345678901234567890123456789012345]))  # fmt: skip
    case.values["kumomta:injectToken"] = value
    return Edit("injectToken", repr(value)[:40], frozenset({"injectToken"}), must=True, local=True)


@st.composite
def remove_required(draw, case: Case) -> Edit:
    key = draw(st.sampled_from(sorted(REQUIRED[case.cloud])))
    _set(case.values, key, None, remove=True)
    # deployCidrs is required of Hetzner stacks only: with the cloud gone too, its refusal may not come.
    return Edit(key, "left out", frozenset({key}), must=True, local=key != "deployCidrs", depends=_ON_CLOUD)


@st.composite
def other_keys(draw, case: Case) -> Edit | None:
    """The rest of the models' keys: pinned private addresses, SSH keys, verify targets, deployer ARNs, an
    existing VPC half given, AMI IDs, dns.create, and a network listed beside one that overlaps it (fine)."""
    what = draw(st.sampled_from(["privateIps", "sshKeys", "verify", "deployerArns", "vpcId", "amiId", "create",
                                 "overlap"]))  # fmt: skip
    hosts = [
        h for h in [*_list(case, "mtaHosts", ["mta"]), *_list(case, "proxyHosts", ["proxy"])] if isinstance(h, str)
    ]
    if what == "privateIps":
        if case.cloud != "hcloud":
            return None
        how = draw(st.sampled_from(["not a host", "outside", "gateway", "shared", "v6", "int"]))
        first = _network(_section(case, "hcloud").get("mtaSubnetCidr"), "10.43.1.0/24").network_address
        mta = next(iter(_list(case, "mtaHosts", ["mta"])), "mta")
        pins = {
            "not a host": {"nosuchhost": str(first + 20)},
            "outside": {mta: "192.0.2.10"},
            "gateway": {mta: str(first + 1)},
            "shared": dict.fromkeys(hosts[:2], str(first + 20)),
            "v6": {mta: "fd00::10"},
            "int": {mta: 10},
        }[how]
        _set(case.values, "hcloud.privateIps", pins)
        must = how != "shared" or len(hosts) > 1
        return Edit("hcloud.privateIps", f"{how}: {pins}", frozenset({"hcloud"}), must=must, depends=_HOSTS | _ON_CLOUD)
    if what == "sshKeys":
        if case.cloud != "hcloud":
            return None
        value = draw(st.sampled_from([[""], ["ops", "ops"], [4711], ["ops", " ops "]]))
        _set(case.values, "hcloud.sshKeys", value)
        return Edit("hcloud.sshKeys", repr(value), frozenset({"hcloud"}), must=True, local=True)
    if what == "verify":
        key = draw(st.sampled_from(["verify.testMx", "verify.webhookUrl"]))
        value = draw(st.sampled_from(["http://app.example.net/hook", "ftp://x", "https://", "mx..example", "-mx.net"]))
        _set(case.values, key, value)
        return Edit(key, repr(value), frozenset({"verify"}), must=True, local=True)
    if what == "deployerArns":
        value = draw(st.sampled_from([["arn:aws:iam::123:role/x"], ["arn:aws:sts::123456789012:assumed-role/x/y"],
                                      ["*"], ["arn:aws:iam::123456789012:role/"]]))  # fmt: skip
        _set(case.values, "aws.deployerArns", value)
        return Edit("aws.deployerArns", repr(value), frozenset({"aws"}), must=True, local=True)
    if what == "vpcId":
        if case.cloud != "aws":
            return None
        _set(case.values, "aws.subnetId", None, remove=True)
        _set(case.values, "aws.vpcId", "vpc-0123456789abcdef0")
        return Edit("aws.vpcId", "without subnetId", frozenset({"aws"}), must=True)
    if what == "amiId":
        value = draw(st.sampled_from(["ami-123", "AMI-0123456789abcdef0", "ubuntu-22.04", "ami-0123456789abcdef0 "]))
        _set(case.values, "aws.amiId", value)
        return Edit("aws.amiId", repr(value), frozenset({"aws"}), must=True, local=True)
    if what == "create":
        dns = _section(case, "dns")
        if dns.get("provider") != "hcloud":
            return None
        value = draw(st.sampled_from([True, False, "yes", 1]))
        case.values["kumomta:dns"] = {**dns, "create": value}
        return Edit("dns.create", repr(value), frozenset({"dns"}), must=not isinstance(value, bool), local=True)
    key = draw(st.sampled_from(["ping8Cidrs", "trustedCidrs", "monitoringCidrs", "adminCidrs"]))
    current = _list(case, key)
    nets = [_network(c, "0.0.0.0/0") for c in current]
    wider = [str(net.supernet()) for net in nets if net.prefixlen > 24]
    if not wider:
        return None
    _set(case.values, key, [*current, wider[0]])
    return Edit(key, f"{wider[0]} beside a network inside it", frozenset({key}))


# Exposures twice over: the class the issue's bypass belongs to.
EDITS = [wrong_type, python_name, junk_key, bad_name, long_name, bad_domain, bad_cidr, duplicate, exposure, exposure, huge_list,
         fleet, network_shape, placement, dns_edit, mail_edit, alias_edit, token_edit, remove_required,
         other_keys]  # fmt: skip


@st.composite
def cases(draw, hostile: bool = False) -> Case:
    """A valid stack with 0 to 3 edits; with `hostile`, edits until one the program must refuse (up to 6)."""
    case = draw(valid_stack())
    count = 6 if hostile else draw(st.sampled_from([0, 1, 1, 2, 2, 3]))
    for _ in range(count):
        if hostile and case.must_refuse and draw(st.booleans()):
            break
        before = copy.deepcopy(case.values)
        edit = draw(draw(st.sampled_from(EDITS))(case))
        if edit is None:
            case.values = before
            continue
        changed = frozenset(
            k for k in before.keys() | case.values.keys() if repr(before.get(k)) != repr(case.values.get(k))
        )
        # What an earlier edit promised no longer holds once a later one changed a key it depends on.
        case.edits = [e for e in case.edits if not e.depends & changed]
        case.edits.append(replace(edit, depends=edit.depends | changed))
    return case


# --- stack files ------------------------------------------------------------------------------------------

# YAML a hand-edited Pulumi.<stack>.yaml may hold: other tags, non-string keys, dates, what isn't a mapping.
YAML_VALUES = ["!!binary YXdz", "2026-11-01", "2026-11-01T12:00:00Z", "!!set {a, b}", "!!float 9101", "!!int '9101'",
               "!!python/name:os.system", "!!str", "~", "[", "{a: 1", "'unterminated", "0o17", "0x1f", ".inf", "1_000",
               "&a [1]", "*nosuchanchor", "!custom x", "\t9101"]  # fmt: skip
YAML_KEYS = ["1", "true", "~", "[a, b]", "? {a: 1}", "2026-11-01", "kumomta:", "''", "!!binary YXdz"]
NOT_A_STACK = ["", "- a\n- b\n", "just text\n", "42\n", "config:\n", "config: [a, b]\n", "config: 7\n",
               "config: !!binary YXdz\n", "\ufeffconfig: {}\n", "config:\n\tkumomta:cloud: aws\n"]  # fmt: skip


@st.composite
def stack_files(draw) -> str:
    """The text of a Pulumi.<stack>.yaml: a valid stack written out, then edited as text."""
    case = draw(valid_stack())
    lines = yaml.safe_dump({"config": case.values}, sort_keys=False, allow_unicode=True).splitlines()
    how = draw(st.sampled_from(["value", "key", "not a stack", "cut", "as is"]))
    if how == "not a stack":
        return draw(st.sampled_from(NOT_A_STACK))
    if how == "cut":
        text = "\n".join(lines)
        return text[: draw(st.integers(0, len(text)))]
    index = draw(st.integers(1, len(lines) - 1))
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    if how == "value" and ": " in lines[index]:
        lines[index] = lines[index].split(": ", 1)[0] + ": " + draw(st.sampled_from(YAML_VALUES))
    elif how == "key":
        lines.insert(index, f"{indent}{draw(st.sampled_from(YAML_KEYS))}: x")
    return "\n".join(lines) + "\n"
