"""Stack configs for the contracts: mostly ones settings accept, over every key that changes a registered value.

The suite checks what the program registers, so a config is worth planning only if settings let it
through. Each draw is built to pass settings (components/settings.py, values.py, limits.py, exposure.py):
an MTA's name fits its certificate's 64-character CN, a network is listed once where two rows would make
the same rule, resolvers and time servers are single addresses, admin, deploy and monitoring networks
stay far from "the internet", server types are of a family the location offers, subnets hold the fleet,
AZs belong to the region. Within that it varies the stack name, labels, domain, fleets, every address list
(IPv4 and IPv6), ipv6, ports, both DNS providers, sending authentication (signing domains, selectors,
Ed25519, SPF terms, DMARC), renamed hosts, pinned addresses and the cloud placement.

Lists go to the limits settings count (AWS: 60 rules per group, direction and family; Hetzner: 100
addresses per rule), at the limit or one past it. Big lists and fleets are drawn as counts of generated
entries, so Hypothesis shrinks them by bisecting one integer. About one config in eight is then spoiled on
purpose by one change settings must refuse (`SPOILERS`), so the refusal path stays exercised too.

`outcome()` runs the program once per distinct config: a Run, a refusal by settings (`kumomta:` lines),
a subnet too small for its hosts, or a crash.
"""

import asyncio
import ipaddress
import json
import logging
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass

import pulumi
import yaml
from hypothesis import strategies as st
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.sync_await import _ensure_event_loop

from components import matrix
from components.settings import ConfigError
from tools import mockrun
from tools.mockrun import Run, run_program, settings_of, stack_config

# An availability zone of each region the configs are placed in.
REGIONS = {"eu-central-1": "eu-central-1b", "us-east-1": "us-east-1f", "ap-southeast-4": "ap-southeast-4a"}
# Hetzner locations by network zone, and server types (MTA, proxy) of families each zone offers
# (https://docs.hetzner.com/cloud/servers/overview: cx and cax only in Germany and Finland).
LOCATIONS = {"fsn1": "eu", "nbg1": "eu", "hel1": "eu", "ash": "us", "hil": "us", "sin": "ap"}
SERVER_TYPES = {
    "eu": [("cx33", "cx23"), ("cax21", "cax11"), ("cpx31", "cpx11"), ("ccx13", "cpx21")],
    "us": [("cpx31", "cpx11"), ("ccx13", "cpx21")],
    "ap": [("cpx31", "cpx11"), ("ccx23", "ccx13")],
}
INSTANCE_TYPES = [("c6i.xlarge", "t3.small"), ("m7g.xlarge", "t4g.small"), ("c7gn.xlarge", "c6in.large")]
# Ports the matrix uses: settings refuse them for the proxy's metrics.
MATRIX_PORTS = {22, 25, 53, 80, 123, 443, 5000, 8000}
AWS_RULES = 60  # AWS VPC quotas: inbound or outbound rules per security group, per IP family
HCLOUD_ADDRESSES = 100  # Hetzner Cloud API, Firewalls: CIDR blocks per rule
LISTS = ["ping8Cidrs", "trustedCidrs", "resolverCidrs", "ntpCidrs", "monitoringCidrs", "adminCidrs", "deployCidrs"]


@dataclass(frozen=True)
class StackConfig:
    """A stack name and its `config:` values, shown as the stack file an operator would write."""

    stack: str
    values: dict

    def __repr__(self) -> str:
        base = "prod-hcloud" if self.values.get("kumomta:cloud") == "hcloud" else "prod"
        changed = {k: _elide(v) for k, v in self.values.items() if stack_config(base).get(k) != v}
        gone = sorted(set(stack_config(base)) - set(self.values))
        return (
            f"stack {self.stack!r}: Pulumi.{base}.yaml "
            + (f"without {', '.join(gone)}, " if gone else "")
            + "with\n"
            + yaml.safe_dump({"config": changed}, sort_keys=True, width=200)
        )

    def _repr_pretty_(self, printer, cycle) -> None:  # how Hypothesis prints a falsifying example
        printer.text(repr(self))

    @property
    def key(self) -> str:
        return json.dumps([self.stack, self.values], sort_keys=True)


@dataclass(frozen=True)
class Outcome:
    """One plan: a Run, a refusal by settings, the mock out of addresses for a subnet, or a crash."""

    run: Run | None = None
    refused: str | None = None
    exhausted: str | None = None
    crash: str | None = None


# The futures of a run the mock stopped hold its error unread; asyncio would log each one when collected.
logging.getLogger("asyncio").addFilter(lambda record: "placeholder subnet" not in record.getMessage())

_CACHE: OrderedDict[str, Outcome] = OrderedDict()
_CACHE_SIZE = 160


def outcome(config: StackConfig) -> Outcome:
    """Plan the config under the mock engine, once per distinct config."""
    if config.key in _CACHE:
        _CACHE.move_to_end(config.key)
        return _CACHE[config.key]
    try:
        with _one_rsa_key():
            result = Outcome(run=run_program(config.stack, config.values))
    except pulumi.RunError as err:
        lines = str(err).splitlines()
        if lines and all(line.startswith("kumomta:") for line in lines):
            result = Outcome(refused=str(err))
        else:
            result = Outcome(crash=f"RunError: {err}")
    except RuntimeError as err:
        # tools/mockrun.py places private addresses as AWS does (4 reserved at the start, 1 at the end).
        full = "placeholder subnet" in str(err) and "is full" in str(err)
        result = Outcome(exhausted=str(err)) if full else Outcome(crash=f"RuntimeError: {err}")
    except Exception as err:  # noqa: BLE001 (any other failure of the program is the finding)
        result = Outcome(crash=f"{type(err).__name__}: {err}")
    if result.run is None:
        _drain()
    _CACHE[config.key] = result
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return result


@contextmanager
def _one_rsa_key():
    """Every RSA key the mock makes is one key per size while a config is planned.

    The mock derives each key from its resource's name (tools/mockrun.py), and finding the primes of a
    2048-bit key in Python takes it about a second: a DKIM key for every new domain and selector would
    make the exploration several times slower. A contract judges a key's record (its size and format),
    never which key it is.
    """
    derive = mockrun._rsa_key
    mockrun._rsa_key = lambda seed, bits: derive("tls/contracts", bits)
    try:
        yield
    finally:
        mockrun._rsa_key = derive


def _elide(value):
    """Long generated lists shown as their first entries and a count."""
    if isinstance(value, list) and len(value) > 8:
        return [*value[:4], f"... {len(value)} entries in all, ending {value[-1]}"]
    if isinstance(value, dict):
        return {k: _elide(v) for k, v in value.items()}
    return value


def _drain() -> None:
    """Cancel what a failed run left behind, so it cannot fail the next run in this process.

    The mock settings keep one set of pending outputs across runs, and the next run awaits them all.
    """
    loop = _ensure_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    SETTINGS.outputs.clear()


# ---- names -------------------------------------------------------------------------------------

_LABEL = r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z"


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws: a middle value of a range, since Hypothesis favours both ends."""
    return st.integers(0, n - 1).map(lambda i: i == n // 2)


def long_label(length: int) -> str:
    return "l" + "o" * (length - 2) + "n" if length > 1 else "l"


def labels(longest: int = 63) -> st.SearchStrategy[str]:
    """DNS labels of at most `longest` characters, sometimes exactly that long."""
    return st.one_of(
        st.sampled_from(["mta", "proxy", "mx1", "px-a", "out"]),
        st.from_regex(_LABEL),
        st.integers(max(1, longest - 20), longest).map(long_label),
    ).filter(lambda label: len(label) <= longest)


# Pulumi's own rule for stack names: 1 to 100 of letters, digits, `-`, `_` and `.`.
stack_names = st.one_of(
    st.sampled_from(["prod", "staging", "prod-eu1", "prod_eu", "prod-eu.1"]),
    st.from_regex(r"\A[A-Za-z0-9_.-]{1,100}\Z"),
)


def dotted(length: int) -> str:
    """Labels of `d` joined by dots, exactly `length` characters (at least 1), each label at most 63."""
    parts = []
    while length > 0:
        size = min(63, length if length <= 63 else length - 2)  # never leave a remainder of 1 (it needs a dot)
        parts.append("d" * size)
        length -= size + 1
    return ".".join(parts)


def long_domain(length: int, tld: str = "com") -> str:
    """A valid domain of exactly `length` characters (at least 5), in labels of at most 63."""
    return f"{dotted(length - len(tld) - 1)}.{tld}"


# Domains at the lengths that matter (short, several labels, the longest an MTA's CN allows), or fresh ones.
DOMAINS = ["yourdomain.com", "mail.example.de", "a.b.c.example", "x.de", long_domain(40), long_domain(62, "de")]


@st.composite
def domains(draw) -> str:
    """A domain an MTA's name still fits under: `<label>.<domain>` is its certificate's CN, at most 64."""
    if draw(st.booleans()):
        return draw(st.sampled_from(DOMAINS))
    name = ".".join([*draw(st.lists(labels(20), min_size=1, max_size=3)), draw(st.sampled_from(["com", "de"]))])
    return name if len(name) <= 62 else long_domain(62)


@st.composite
def subdomains(draw, of: str) -> str:
    """A name in the zone `of`: itself, a few labels under it, or a long one near the 253 characters of a name."""
    kind = draw(st.sampled_from(["zone", "mail", "news.eu", "long"]))
    if kind == "zone":
        return of
    if kind == "long":  # `<selector>._domainkey.` and `_dmarc.` in front of this stay within 253, or not
        # 170 + `<63-character selector>-ed25519._domainkey.` is 253, what settings take.
        return f"{dotted(max(1, draw(st.sampled_from([150, 170])) - len(of)))}.{of}"
    return f"{kind}.{of}"


# ---- addresses ---------------------------------------------------------------------------------


@st.composite
def networks(draw, version: int | None = None, low: int = 0, high: int | None = None) -> str:
    version = version or draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(low, bits if high is None else high))
    value = draw(st.integers(0, 2**bits - 1))
    return str(ipaddress.ip_network((value, prefix), strict=False))


def hosts(key: str, count: int, v6: int = 0) -> list[str]:
    """`count` single IPv4 addresses (and `v6` IPv6) of a block of this list's own, so lists never share one."""
    block = LISTS.index(key) * 2
    return [f"198.18.{block + i // 256}.{i % 256}/32" for i in range(count)] + [
        f"2001:db8:ffff:{block:x}::{i:x}/128" for i in range(v6)
    ]


def single() -> st.SearchStrategy[str]:
    """One address as a CIDR: what resolvers and time servers must be."""
    return st.one_of(networks(4, 32, 32), networks(6, 128, 128))


def narrow() -> st.SearchStrategy[str]:
    """A network settings never count as the internet, even six of them on one port (admin and deploy on 22)."""
    return st.one_of(networks(4, 20, 32), networks(6, 36, 128))


# ---- sending authentication --------------------------------------------------------------------

# Long ones take `-ed25519` too with `dkim.ed25519`.
SELECTORS = st.one_of(
    st.sampled_from(["s202611", "kumomta", "sel-2027", "mail.s1", long_label(55), long_label(63)]),
    st.from_regex(_LABEL),
)
SPF_TERMS = ["include:_spf.google.com", "ip4:192.0.2.0/24", "ip6:2001:db8::/32", "mx", "a", "exists:%{i}._spf.x.de"]
RUAS = ["mailto:dmarc@yourdomain.com", "mailto:dmarc+rua@example.com", "mailto:d-r+x=y~z@reports.example.com"]


@st.composite
def sending(draw, domain: str, zone: str | None) -> dict:
    """`dkim`, `spf` and `dmarc`: signing domains in the zone, one to three selectors, the record switches."""
    out: dict = {}
    dkim: dict = {"selectors": [{"name": s} for s in draw(st.lists(SELECTORS, min_size=1, max_size=3, unique=True))]}
    if draw(st.booleans()):
        dkim["selectors"][0]["signFrom"] = draw(st.sampled_from(["2026-11-01", "2027-01-01T00:00:00Z"]))
    if draw(st.booleans()):
        dkim["domains"] = draw(st.lists(subdomains(zone or domain), min_size=1, max_size=3, unique=True))
    # `<selector>-ed25519` is one DNS label: only selectors of 55 characters or less take an Ed25519 key beside.
    if draw(st.booleans()) and all(len(s["name"].split(".")[-1]) <= 55 for s in dkim["selectors"]):
        dkim["ed25519"] = True
    if draw(one_in(6)):
        dkim["publish"] = False
    out["kumomta:dkim"] = dkim
    spf: dict = {"include": draw(st.lists(st.sampled_from(SPF_TERMS), max_size=3, unique=True))}
    if draw(one_in(6)):
        spf["publish"] = False
    out["kumomta:spf"] = spf
    dmarc: dict = {"policy": draw(st.sampled_from(["none", "quarantine", "reject"]))}
    if draw(st.booleans()):
        dmarc["rua"] = draw(st.sampled_from(RUAS))
    if draw(one_in(6)):
        dmarc["publish"] = False
    out["kumomta:dmarc"] = dmarc
    return out


# ---- placement ---------------------------------------------------------------------------------

_PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def _two_subnets(block: ipaddress.IPv4Network, prefix: int) -> tuple[str, str]:
    """The first two subnets of `block` of this prefix length."""
    size = 2 ** (32 - prefix)
    first, second = (ipaddress.ip_network((int(block.network_address) + i * size, prefix)) for i in (0, 1))
    return str(first), str(second)


@st.composite
def aws_placement(draw, region: str, fleet: int) -> dict:
    """A zone of the region, a VPC of /16 to /27 with two subnets that hold the bigger role, or an existing subnet."""
    out: dict = {"availabilityZone": REGIONS[region]}
    out["mtaInstanceType"], out["proxyInstanceType"] = draw(st.sampled_from(INSTANCE_TYPES))
    if draw(one_in(6)):
        return {**out, "vpcId": "vpc-0123456789abcdef0", "subnetId": "subnet-0123456789abcdef0"}
    if draw(st.booleans()):
        # AWS keeps 5 addresses of every subnet; the smallest subnet that holds the fleet, or a wider one.
        smallest = next(p for p in range(28, 15, -1) if 2 ** (32 - p) - 5 >= fleet)
        prefix = draw(st.integers(17, smallest))
        vpc_prefix = draw(st.integers(16, prefix - 1))
        parent = ipaddress.ip_network(draw(st.sampled_from(_PRIVATE)))
        offset = draw(st.integers(0, 2 ** (vpc_prefix - parent.prefixlen) - 1))
        vpc = ipaddress.ip_network((int(parent.network_address) + offset * 2 ** (32 - vpc_prefix), vpc_prefix))
        mta, proxy = _two_subnets(vpc, prefix)
        out.update(vpcCidr=str(vpc), mtaSubnetCidr=mta, proxySubnetCidr=proxy)
    if draw(st.booleans()):
        out.update(rootVolumeGb=draw(st.integers(8, 16384)), spoolVolumeGb=draw(st.integers(1, 16384)))
    if draw(st.booleans()):
        out["amiId"] = draw(st.sampled_from(["ami-0123456789abcdef0", "ami-12345678"]))
    if draw(one_in(4)):
        count = draw(st.sampled_from([1, 2, 3, 20]))  # 20, settings' most, with long paths
        path = "p" * draw(st.integers(0, 120)) + "/" if count > 3 else ""
        out["deployerArns"] = [f"arn:aws:iam::123456789012:role/{path}deploy-{i}" for i in range(count)]
    return out


@st.composite
def hcloud_placement(draw, mtas: list[str], proxies: list[str]) -> dict:
    """A location and its server types, a network of /8 to /24 whose two subnets hold the fleet, pinned addresses."""
    location = draw(st.sampled_from(sorted(LOCATIONS)))
    mta_type, proxy_type = draw(st.sampled_from(SERVER_TYPES[LOCATIONS[location]]))
    out: dict = {"location": location, "mtaServerType": mta_type, "proxyServerType": proxy_type}
    fleet = max(len(mtas), len(proxies))
    if draw(st.booleans()):
        # Hetzner keeps the subnet's gateway; settings number hosts from address 10 and keep the last.
        smallest = next(p for p in range(30, 7, -1) if 2 ** (32 - p) - 11 >= fleet)
        prefix = draw(st.integers(max(9, smallest - 6), smallest))
        net_prefix = draw(st.integers(max(8, prefix - 8), min(24, prefix - 1)))
        # Not 172.31.0.0/16: it holds 172.31.1.1, every Hetzner server's public gateway.
        parent = ipaddress.ip_network(draw(st.sampled_from(["10.0.0.0/8", "172.16.0.0/13", "192.168.0.0/16"])))
        net_prefix = max(net_prefix, parent.prefixlen)
        offset = draw(st.integers(0, 2 ** (net_prefix - parent.prefixlen) - 1))
        block = ipaddress.ip_network((int(parent.network_address) + offset * 2 ** (32 - net_prefix), net_prefix))
        mta, proxy = _two_subnets(block, max(prefix, net_prefix + 1))
        out.update(networkCidr=str(block), mtaSubnetCidr=mta, proxySubnetCidr=proxy)
    if draw(st.booleans()):
        # Pinned from the top of the subnet down, clear of the addresses counted from 10.
        subnet = ipaddress.ip_network(out.get("proxySubnetCidr", "10.43.2.0/24"))
        if subnet.num_addresses - 12 >= 2 * len(proxies):
            pinned = draw(st.lists(st.sampled_from(proxies), min_size=1, max_size=2, unique=True))
            out["privateIps"] = {p: str(subnet.broadcast_address - 1 - i) for i, p in enumerate(pinned)}
    if draw(st.booleans()):
        out["spoolVolumeGb"] = draw(st.integers(10, 10240))
    if draw(st.booleans()):
        out["sshKeys"] = draw(st.lists(st.sampled_from(["ops", "ci-deploy", "12345"]), unique=True, min_size=1))
    if draw(one_in(4)):
        out["deleteProtection"] = False
    return out


# ---- address lists -----------------------------------------------------------------------------


def _aws_room(values: dict, key: str) -> int | None:
    """How many more single IPv4 addresses `key` takes before a security group holds more than 60 rules of a
    direction and family, counted over the program's own matrix as settings count them; None if refused."""
    try:
        settings = settings_of(values)
    except ConfigError:
        return None
    used, per_address = Counter(), Counter()
    for role in matrix.Role:
        for rule in matrix.rules(role, settings):
            for family in (4, 6) if rule.cidr is None else (rule.cidr.version,):
                used[(role, rule.row.direction, family)] += 1
        for row in matrix.rows(role, settings):
            if _LIST_OF.get(row.peer) == key:
                per_address[(role, row.direction, 4)] += len(row.protocols)
    return min(((AWS_RULES - used[group]) // n for group, n in per_address.items()), default=None)


_LIST_OF = {
    matrix.Peer.PING8: "ping8Cidrs",
    matrix.Peer.TRUSTED: "trustedCidrs",
    matrix.Peer.RESOLVER: "resolverCidrs",
    matrix.Peer.TIME: "ntpCidrs",
    matrix.Peer.MONITORING: "monitoringCidrs",
    matrix.Peer.ADMIN: "adminCidrs",
    matrix.Peer.DEPLOY: "deployCidrs",
}


def near(limit: int) -> st.SearchStrategy[int]:
    """A count at a limit, just under it, one past it, or anywhere below."""
    return st.one_of(st.sampled_from([limit, limit - 1, limit + 1]), st.integers(0, max(0, limit))).map(
        lambda n: max(0, n)
    )


@st.composite
def address_lists(draw, cloud: str, package_egress: bool, ipv6: bool) -> dict:
    """Every address list as settings take it: few drawn entries, each list apart from the others; servers a host
    without IPv6 can reach (settings refuse IPv6 resolvers or time servers alone with `ipv6: false`)."""
    servers = st.lists(single(), min_size=1, max_size=3, unique=True)
    if not ipv6:
        servers = st.tuples(networks(4, 32, 32), servers).map(lambda t: list(dict.fromkeys([t[0], *t[1]])))
    ping8 = draw(st.lists(networks(), min_size=1, max_size=3, unique=True))
    if package_egress:  # 0.0.0.0/0 out on 443 is already the package egress rule
        ping8 = [n for n in ping8 if not n.endswith("/0")] or ["203.0.113.10/32"]
    trusted = [n for n in draw(st.lists(networks(), max_size=3, unique=True)) if n not in ping8]
    out = {
        "kumomta:ping8Cidrs": ping8,
        "kumomta:trustedCidrs": trusted,
        "kumomta:monitoringCidrs": draw(st.lists(narrow(), max_size=3, unique=True)),
        "kumomta:adminCidrs": draw(st.lists(narrow(), max_size=3, unique=True)),
    }
    if cloud == "hcloud":
        deploy = draw(st.lists(narrow(), min_size=1, max_size=3, unique=True))
        out["kumomta:deployCidrs"] = [n for n in deploy if n not in out["kumomta:adminCidrs"]] or hosts(
            "deployCidrs", 1
        )
    if draw(st.booleans()):
        out["kumomta:resolverCidrs"] = draw(servers)
    time = draw(st.integers(0, 3))
    if time == 1:
        out["kumomta:ntpCidrs"] = draw(st.sampled_from([["0.0.0.0/0"], ["0.0.0.0/0", "::/0"]]))
    elif time == 2:
        out["kumomta:ntpCidrs"] = draw(servers)
    elif time == 3 and cloud == "aws":
        out["kumomta:ntpCidrs"] = []  # Amazon Time Sync only
    return out


@st.composite
def bulk(draw, cloud: str, values: dict) -> dict:
    """Sometimes a long list: on AWS up to the 60 rules of a group; on Hetzner near the 100 addresses of a rule
    (one list: all of them near 100 pass the 500 effective rules of a firewall, which EDGES visits)."""
    if not draw(one_in(6)):
        return values
    out = dict(values)
    if cloud == "hcloud":
        key = draw(st.sampled_from(LISTS))
        if key == "ntpCidrs" and any(n.endswith("/0") for n in out.get("kumomta:ntpCidrs") or []):
            return out  # anywhere, or specific servers: not both
        have = out.get(f"kumomta:{key}") or []
        room = HCLOUD_ADDRESSES - len(have)
        n = draw(st.one_of(st.sampled_from([room, room - 1, room + 1]), st.integers(0, room)))  # room + 1: refused
        out[f"kumomta:{key}"] = have + hosts(key, n - n // 10, n // 10)
        return out
    key = draw(st.sampled_from([k for k in LISTS if k != "deployCidrs"]))
    if key == "ntpCidrs" and any(n.endswith("/0") for n in out.get("kumomta:ntpCidrs") or []):
        return out
    room = _aws_room(out, key)
    if room is not None:
        out[f"kumomta:{key}"] = (out.get(f"kumomta:{key}") or []) + hosts(key, draw(near(room)))
    return out


# ---- whole configs -----------------------------------------------------------------------------


@st.composite
def fleets(draw, prefix: str, extra: st.SearchStrategy[int], longest: int, taken: tuple[str, ...] = ()) -> list[str]:
    """A few drawn labels (none of `taken`) and `extra` generated ones, so a big fleet shrinks by one integer."""
    named = [
        label for label in draw(st.lists(labels(longest), min_size=1, max_size=3, unique=True)) if label not in taken
    ]
    extras = [f"{prefix}{i}" for i in range(draw(extra))]
    return [h for h in dict.fromkeys(named + extras) if h not in taken and len(h) <= longest] or [f"{prefix}0"]


@st.composite
def valid_configs(draw, cloud: str) -> StackConfig:
    """A config of the given cloud that settings accept (as far as the generator knows them)."""
    base = stack_config("prod-hcloud" if cloud == "hcloud" else "prod")
    region = draw(st.sampled_from(sorted(REGIONS)))
    domain = draw(domains())
    mtas = draw(fleets("mx", st.integers(0, 2), 63 - len(domain)))
    large = st.integers(8, 16) if cloud == "aws" else st.integers(12, 30)
    proxies = draw(fleets("px", large if draw(one_in(12)) else st.integers(0, 3), 63, tuple(mtas)))
    package_egress, ipv6 = draw(st.booleans()), draw(st.booleans())
    values = {
        **base,
        "aws:region": region,
        "kumomta:domain": domain,
        "kumomta:mtaHosts": mtas,
        "kumomta:proxyHosts": proxies,
        "kumomta:proxyMetricsPort": draw(st.one_of(st.just(9101), st.integers(1, 65535))),
        "kumomta:packageEgress": package_egress,
        "kumomta:ipv6": ipv6,
        **draw(address_lists(cloud, package_egress, ipv6)),
    }
    if values["kumomta:proxyMetricsPort"] in MATRIX_PORTS:
        values["kumomta:proxyMetricsPort"] = 9101
    zone = None
    if draw(st.booleans()):
        values["kumomta:dns"] = {"provider": "route53", "zoneId": "Z0123456789ABCDEFGHIJ"}
    else:
        zone = domain.split(".", draw(st.integers(0, domain.count(".") - 1)))[-1]
        values["kumomta:dns"] = {"provider": "hcloud", "zone": zone, "create": draw(st.booleans())}
    values.update(draw(sending(domain, zone)))
    if cloud == "aws":
        values["kumomta:aws"] = draw(aws_placement(region, max(len(mtas), len(proxies))))
    else:
        values["kumomta:hcloud"] = draw(hcloud_placement(mtas, proxies))
    if draw(one_in(6)):  # a renamed host keeps what it was deployed with
        values["kumomta:hostAliases"] = {draw(st.sampled_from(mtas + proxies)): "first-name"}
    if draw(st.booleans()):
        values["kumomta:injectToken"] = draw(st.from_regex(r"\A[A-Za-z0-9._~+/-]{32,128}\Z"))
    return StackConfig(draw(stack_names), draw(bulk(cloud, values)))


def _set(key: str, value):
    return lambda values: {**values, f"kumomta:{key}": value}


def _nested(key: str, inner: str, value):
    return lambda values: {**values, f"kumomta:{key}": {**values.get(f"kumomta:{key}", {}), inner: value}}


# One change each that settings must refuse, with the clouds it applies to.
SPOILERS = [
    (
        {"aws", "hcloud"},
        lambda v: {**v, "kumomta:trustedCidrs": [*v["kumomta:trustedCidrs"], v["kumomta:ping8Cidrs"][0]]},
    ),
    ({"aws", "hcloud"}, _set("resolverCidrs", ["192.0.2.0/24"])),
    ({"aws", "hcloud"}, _set("ntpCidrs", ["0.0.0.0/0", "192.0.2.123/32"])),
    ({"aws", "hcloud"}, _set("proxyMetricsPort", 5000)),
    ({"aws", "hcloud"}, _set("adminCidrs", ["11.0.0.0/15"])),
    ({"aws", "hcloud"}, _set("monitoringCidrs", [f"11.{i}.0.0/20" for i in range(17)])),
    ({"aws", "hcloud"}, lambda v: {**v, "kumomta:mtaHosts": [long_label(64 - len(v["kumomta:domain"]))]}),
    ({"aws", "hcloud"}, lambda v: {**v, "kumomta:proxyHosts": v["kumomta:mtaHosts"][:1]}),
    ({"aws", "hcloud"}, _set("mtaHost", ["mta"])),
    ({"aws", "hcloud"}, _nested("dkim", "selectors", [{"name": "a_b"}])),
    ({"aws", "hcloud"}, _nested("dmarc", "rua", "dmarc@yourdomain.com")),
    ({"aws", "hcloud"}, _nested("spf", "include", ["-all"])),
    ({"aws", "hcloud"}, lambda v: {**v, "kumomta:hostAliases": {v["kumomta:mtaHosts"][0]: v["kumomta:proxyHosts"][0]}}),
    ({"aws"}, _set("deployCidrs", ["198.51.100.30/32"])),
    ({"aws"}, _nested("aws", "availabilityZone", "sa-east-1a")),
    ({"aws"}, _nested("aws", "mtaSubnetCidr", "192.168.0.0/29")),
    ({"hcloud"}, _set("ntpCidrs", [])),
    ({"hcloud"}, lambda v: {k: x for k, x in v.items() if k != "kumomta:deployCidrs"}),
    (
        {"hcloud"},
        lambda v: {**v, "kumomta:hcloud": {**v["kumomta:hcloud"], "location": "sin", "mtaServerType": "cx33"}},
    ),
    ({"hcloud"}, _nested("hcloud", "backups", True)),
    ({"hcloud"}, _nested("hcloud", "privateIps", {"nobody": "10.43.2.99"})),
    ({"hcloud"}, _set("ping8Cidrs", hosts("ping8Cidrs", HCLOUD_ADDRESSES + 1))),
]


@st.composite
def stack_configs(draw, cloud: str) -> StackConfig:
    """Mostly configs settings accept; about one in eight spoiled by one change settings must refuse."""
    config = draw(valid_configs(cloud))
    if not draw(one_in(8)):
        return config
    spoil = draw(st.sampled_from([spoil for clouds, spoil in SPOILERS if cloud in clouds]))
    return StackConfig(config.stack, spoil(config.values))


def edge(cloud: str, stack: str = "prod", **overrides) -> StackConfig:
    """A stack file with `kumomta:` overrides, for the boundaries below."""
    values = {**stack_config("prod-hcloud" if cloud == "hcloud" else "prod"), "aws:region": "eu-central-1"}
    values.update({f"kumomta:{key}": value for key, value in overrides.items()})
    if "domain" in overrides and values["kumomta:dns"]["provider"] == "hcloud":
        values["kumomta:dns"] = {**values["kumomta:dns"], "zone": overrides["domain"]}
    return StackConfig(stack, values)


def _at_aws_quota(key: str, past: int = 0) -> StackConfig:
    """prod with `key` grown to exactly 60 rules in a security group's direction (`past` more after that)."""
    values = edge("aws").values
    room = _aws_room(values, key)
    return edge("aws", **{key: values.get(f"kumomta:{key}", []) + hosts(key, room + past)})


_SELECTOR = long_label(63 - len("-ed25519"))  # the longest selector whose Ed25519 label still fits in 63
# The longest signing domain settings take under that selector: its record name is 253 characters.
_SIGNING = f"{dotted(253 - len(f'{_SELECTOR}-ed25519._domainkey.') - len('.yourdomain.com'))}.yourdomain.com"
_LONG_ARNS = [f"arn:aws:iam::123456789012:role/{'p' * 400}/deploy-{i}" for i in range(20)]  # settings' most
# Sending authentication at its edges: the longest signing domain and selector settings take, and a report
# address with every separator mailto: allows.
_DKIM_EDGES = {"domains": [_SIGNING], "selectors": [{"name": _SELECTOR}], "ed25519": True}
_ROUTE53 = {"provider": "route53", "zoneId": "Z0123456789ABCDEFGHIJ"}
_HCLOUD_DNS = {"provider": "hcloud", "zone": "yourdomain.com"}

# The boundaries the clouds document, visited first in every exploration: just past each one where settings
# let it through (else at it), so a contract cannot pass only because the generator missed its edge; and one
# past a limit settings count, which they must refuse.
EDGES = {
    "aws": [
        _at_aws_quota("ping8Cidrs"),  # 60 inbound and 60 outbound rules in the MTA group
        _at_aws_quota("ping8Cidrs", past=1),  # 61: settings refuse it
        _at_aws_quota("resolverCidrs"),  # 60 outbound rules in both groups, two per resolver
        edge(
            "aws",
            aws={"vpcCidr": "10.0.0.0/16", "mtaSubnetCidr": "10.0.0.0/28", "proxySubnetCidr": "10.0.0.16/28"},
            proxyHosts=[f"px{i}" for i in range(11)],
        ),  # a /28 holds 11 hosts
        edge("aws", domain=long_domain(60), mtaHosts=["mta"], proxyHosts=[long_label(63)]),  # a CN of 64
        edge("aws", stack="s" * 100, dkim=_DKIM_EDGES, dmarc={"rua": RUAS[2]}),  # names, tags, TXT (Route53)
        edge("aws", dns=_HCLOUD_DNS, dkim=_DKIM_EDGES, dmarc={"rua": RUAS[2]}),  # the same through Hetzner DNS
        edge("aws", stack="prod.eu"),  # a stack name with a dot
        edge("aws", aws={"availabilityZone": "eu-central-1a", "deployerArns": _LONG_ARNS}),  # the longest key policy
    ],
    "hcloud": [
        # SPF of 62 dual-stack proxies, the most settings publish, through Route53; 98 proxies' user data.
        edge("hcloud", proxyHosts=[f"px{i}" for i in range(62)], ipv6=True, dns=_ROUTE53, dkim=_DKIM_EDGES),
        edge("hcloud", proxyHosts=[f"px{i}" for i in range(98)], ipv6=True, spf={"publish": False}),
        edge("hcloud", **{key: hosts(key, HCLOUD_ADDRESSES) for key in LISTS if key != "monitoringCidrs"}),
        edge("hcloud", ping8Cidrs=hosts("ping8Cidrs", HCLOUD_ADDRESSES + 1)),  # 101 in a rule: settings refuse it
        edge("hcloud", stack="prod.", mtaHosts=["m"]),  # not a label value: settings refuse it
        edge("hcloud", stack="prod.eu-1", mtaHosts=["m"]),  # a label value with every separator
        edge("hcloud", stack="s" * 55, mtaHosts=["mta"]),  # a spool volume name of 65 characters
        edge("hcloud", dkim=_DKIM_EDGES, dmarc={"rua": RUAS[2]}),
        edge(
            "hcloud",
            hcloud={"networkCidr": "10.43.0.0/24", "mtaSubnetCidr": "10.43.0.0/27", "proxySubnetCidr": "10.43.0.32/27"},
            proxyHosts=[f"px{i}" for i in range(21)],
        ),  # a /27 holds 21 hosts numbered from its 10th address
    ],
}
