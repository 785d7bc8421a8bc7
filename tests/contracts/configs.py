"""Stack configs for the contracts, generated over every key that changes a registered value.

A config starts from Pulumi.prod.yaml or Pulumi.prod-hcloud.yaml and varies the stack name, host
labels (long ones too), domain, fleet sizes, every CIDR list (IPv4 and IPv6, up to past the clouds'
limits), ipv6, ports, DNS provider and the cloud placement. Big lists and fleets are drawn as counts
of generated entries, so Hypothesis shrinks them by bisecting one integer rather than element by
element: a minimal falsifying config stays cheap to find.

`outcome()` runs the program once per distinct config: a Run, a refusal by settings (`kumomta:` lines),
a subnet too small for its hosts, or a crash.
"""

import asyncio
import ipaddress
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass

import pulumi
import yaml
from hypothesis import strategies as st
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.sync_await import _ensure_event_loop

from tools.mockrun import Run, run_program, stack_config

REGIONS = ["eu-central-1", "us-east-1", "ap-southeast-4", "sa-east-1"]
LOCATIONS = ["fsn1", "nbg1", "hel1", "ash", "hil", "sin"]


@dataclass(frozen=True)
class StackConfig:
    """A stack name and its `config:` values, shown as the stack file an operator would write."""

    stack: str
    values: dict

    def __repr__(self) -> str:
        base = "prod-hcloud" if self.values.get("kumomta:cloud") == "hcloud" else "prod"
        changed = {k: _elide(v) for k, v in self.values.items() if stack_config(base).get(k) != v}
        return f"stack {self.stack!r}: Pulumi.{base}.yaml with\n" + yaml.safe_dump(
            {"config": changed}, sort_keys=True, width=200
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


def _elide(value):
    """Long generated lists shown as their first entries and a count."""
    if isinstance(value, list) and len(value) > 8:
        return [*value[:4], f"... {len(value)} entries in all, ending {value[-1]}"]
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


# ---- building blocks ---------------------------------------------------------------------------

_LABEL = r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z"

labels = st.one_of(
    st.sampled_from(["mta", "proxy", "mx1", "px-a", "out"]),
    st.from_regex(_LABEL),
    st.integers(40, 63).map(lambda n: "l" + "o" * (n - 2) + "n"),
)

# Pulumi's own rule for stack names: 1 to 100 of letters, digits, `-`, `_` and `.`.
stack_names = st.one_of(
    st.sampled_from(["prod", "staging", "prod-eu.1", "prod_eu"]),
    st.from_regex(r"\A[A-Za-z0-9_.-]{1,100}\Z"),
)


@st.composite
def domains(draw) -> str:
    tld = draw(st.sampled_from(["com", "de", "example"]))
    if draw(st.integers(0, 5)) == 5:  # near the 253 characters a domain may have
        return long_domain(draw(st.integers(190, 253)), tld)
    return ".".join([*draw(st.lists(labels, min_size=1, max_size=4)), tld])


def long_domain(length: int, tld: str = "com") -> str:
    """A valid domain of exactly `length` characters (at least 5), in labels of at most 63."""
    body, parts = length - len(tld) - 1, []
    while body > 0:
        size = min(63, body if body <= 63 else body - 2)  # never leave a remainder of 1 (it needs a dot)
        parts.append("d" * size)
        body -= size + 1
    return ".".join([*parts, tld])


@st.composite
def networks(draw, version: int | None = None, low: int = 0, high: int | None = None) -> str:
    version = version or draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(low, bits if high is None else high))
    value = draw(st.integers(0, 2**bits - 1))
    return str(ipaddress.ip_network((value, prefix), strict=False))


@st.composite
def cidr_lists(
    draw, bulk: int = 0, allow_default: bool = False, no_world: bool = False, least: int = 0
) -> list[str] | None:
    """A few drawn networks plus `least` to `bulk` generated /32s and some /128s (drawn as two counts)."""
    if allow_default and draw(st.booleans()):
        return None  # the cloud's default
    picked = draw(st.lists(networks(), max_size=4, unique=True))
    if no_world:
        picked = [n for n in picked if not n.endswith("/0")]
    v4 = draw(st.integers(least, bulk)) if bulk else 0
    v6 = draw(st.integers(0, bulk // 4 if bulk > 100 else 100 - bulk - 4)) if bulk else 0
    generated = [f"198.18.{i // 256}.{i % 256}/32" for i in range(v4)] + [
        f"2001:db8:ffff::{i:x}/128" for i in range(v6)
    ]
    return list(dict.fromkeys(picked + generated))


@st.composite
def fleets(draw, extra_prefix: str, extra: st.SearchStrategy[int], taken: tuple[str, ...] = ()) -> list[str]:
    """A few drawn labels (none of `taken`) and `extra` generated ones, so a big fleet shrinks by one integer."""
    named = [label for label in draw(st.lists(labels, min_size=1, max_size=3, unique=True)) if label not in taken]
    hosts = list(dict.fromkeys(named + [f"{extra_prefix}{i}" for i in range(draw(extra))]))
    return hosts or [f"{extra_prefix}0"]


@st.composite
def inside(draw, block: str, sub_low: int, sub_high: int) -> tuple[str, str]:
    """Two distinct subnets of `block`, each at least /sub_low and at most /sub_high."""
    net = ipaddress.ip_network(block)
    prefix = draw(st.integers(max(net.prefixlen + 1, sub_low), sub_high))
    start = int(net.network_address)
    first, second = (ipaddress.ip_network((start + i * 2 ** (32 - prefix), prefix)) for i in (0, 1))
    return str(first), str(second)


_PRIVATE = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


@st.composite
def aws_placement(draw) -> dict:
    out: dict = {}
    if draw(st.integers(0, 5)) == 5:
        return {"vpcId": "vpc-0123456789abcdef0", "subnetId": "subnet-0123456789abcdef0"}
    if draw(st.booleans()):
        parent = ipaddress.ip_network(draw(st.sampled_from(_PRIVATE)))
        prefix = draw(st.integers(parent.prefixlen, 29))
        offset = draw(st.integers(0, 2 ** (prefix - parent.prefixlen) - 1))
        vpc = ipaddress.ip_network((int(parent.network_address) + offset * 2 ** (32 - prefix), prefix))
        mta, proxy = draw(inside(str(vpc), 16, 30))
        out.update(vpcCidr=str(vpc), mtaSubnetCidr=mta, proxySubnetCidr=proxy)
    if draw(st.booleans()):
        out.update(rootVolumeGb=draw(st.integers(8, 1024)), spoolVolumeGb=draw(st.integers(1, 16384)))
    if draw(st.booleans()):
        out["availabilityZone"] = draw(st.sampled_from(["eu-central-1b", "us-east-1f"]))
    return out


@st.composite
def hcloud_placement(draw) -> dict:
    out: dict = {"location": draw(st.sampled_from(LOCATIONS))}
    if draw(st.booleans()):
        parent = ipaddress.ip_network(draw(st.sampled_from(_PRIVATE)))
        prefix = draw(st.integers(parent.prefixlen, 27))
        offset = draw(st.integers(0, 2 ** (prefix - parent.prefixlen) - 1))
        block = ipaddress.ip_network((int(parent.network_address) + offset * 2 ** (32 - prefix), prefix))
        # /28 at the smallest: the mock cloud keeps 5 addresses per subnet as AWS does, stricter than Hetzner.
        mta, proxy = draw(inside(str(block), 8, 28))
        out.update(networkCidr=str(block), mtaSubnetCidr=mta, proxySubnetCidr=proxy)
    if draw(st.booleans()):
        out["spoolVolumeGb"] = draw(st.integers(10, 10240))
    if draw(st.booleans()):
        out["sshKeys"] = draw(st.lists(st.sampled_from(["ops", "ci-deploy", "12345"]), unique=True, min_size=1))
    return out


@st.composite
def stack_configs(draw, cloud: str) -> StackConfig:
    """A config of the given cloud, both DNS providers, mostly small, sometimes past the clouds' limits."""
    base = stack_config("prod-hcloud" if cloud == "hcloud" else "prod")
    # Sometimes long address lists: on AWS one list at a time (each address is a rule resource, and the
    # 60-rule quota is per direction), on Hetzner all of them (one rule holds a list; 500 per firewall).
    lists = ["ping8Cidrs", "trustedCidrs", "monitoringCidrs", "adminCidrs", "resolverCidrs", "ntpCidrs"]
    bulky = draw(st.sampled_from(lists)) if draw(st.integers(0, 5)) == 5 else None
    if cloud == "hcloud":  # every list near Hetzner's 100 per rule, so the firewall nears 500 addresses
        bulk = dict.fromkeys(lists, 92 if bulky else 0)
    else:
        bulk = {key: 120 if key == bulky else 0 for key in lists}
    least = 60 if cloud == "hcloud" else 0
    # Sometimes a big fleet: past a /28 subnet on AWS, near Hetzner's 32 KiB of user data.
    large = st.integers(10, 30) if cloud == "aws" else st.integers(80, 110)
    proxies_extra = large if draw(st.integers(0, 7)) == 7 else st.integers(0, 3)
    domain = draw(domains())
    mtas = draw(fleets("mx", st.integers(0, 3)))
    values = {
        **base,
        "aws:region": draw(st.sampled_from(REGIONS)),
        "kumomta:domain": domain,
        "kumomta:mtaHosts": mtas,
        "kumomta:proxyHosts": draw(fleets("px", proxies_extra, taken=tuple(mtas))),
        "kumomta:ping8Cidrs": draw(cidr_lists(bulk["ping8Cidrs"], least=least)) or ["203.0.113.10/32"],
        "kumomta:trustedCidrs": draw(cidr_lists(bulk["trustedCidrs"], least=least)),
        "kumomta:monitoringCidrs": draw(cidr_lists(bulk["monitoringCidrs"], no_world=True, least=least)),
        "kumomta:adminCidrs": draw(cidr_lists(bulk["adminCidrs"], no_world=True, least=least)),
        "kumomta:proxyMetricsPort": draw(st.one_of(st.just(9101), st.integers(1, 65535))),
        "kumomta:packageEgress": draw(st.booleans()),
        "kumomta:ipv6": draw(st.booleans()),
    }
    if draw(st.booleans()):  # the PING8 app is also a trusted network
        trusted = [values["kumomta:ping8Cidrs"][0], *values["kumomta:trustedCidrs"]]
        values["kumomta:trustedCidrs"] = list(dict.fromkeys(trusted))
    resolvers = draw(cidr_lists(bulk["resolverCidrs"], allow_default=True, least=least))
    time_servers = draw(cidr_lists(bulk["ntpCidrs"], allow_default=True, least=least))
    if resolvers is not None:
        values["kumomta:resolverCidrs"] = resolvers or ["192.0.2.53/32"]  # never empty: settings require one
    if time_servers is not None:
        values["kumomta:ntpCidrs"] = time_servers
    if draw(st.booleans()):
        values["kumomta:dns"] = {"provider": "route53", "zoneId": "Z0123456789ABCDEFGHIJ"}
    else:
        zone = domain.split(".", draw(st.integers(0, domain.count(".") - 1)))[-1]
        values["kumomta:dns"] = {"provider": "hcloud", "zone": zone, "create": draw(st.booleans())}
    if cloud == "aws":
        values["kumomta:aws"] = {**base.get("kumomta:aws", {}), **draw(aws_placement())}
    else:
        values["kumomta:hcloud"] = {**base.get("kumomta:hcloud", {}), **draw(hcloud_placement())}
    if draw(st.booleans()):
        values["kumomta:injectToken"] = draw(st.from_regex(r"\A[A-Za-z0-9._~+/-]{32,128}\Z"))
    return StackConfig(draw(stack_names), values)


def edge(cloud: str, stack: str = "prod", **overrides) -> StackConfig:
    """A stack file with `kumomta:` overrides, for the boundaries below."""
    values = {**stack_config("prod-hcloud" if cloud == "hcloud" else "prod"), "aws:region": "eu-central-1"}
    values.update({f"kumomta:{key}": value for key, value in overrides.items()})
    if "domain" in overrides and values["kumomta:dns"]["provider"] == "hcloud":
        values["kumomta:dns"] = {**values["kumomta:dns"], "zone": overrides["domain"]}
    return StackConfig(stack, values)


def _hosts(n: int) -> list[str]:
    return [f"198.18.{i // 256}.{i % 256}/32" for i in range(n)]


# The boundaries the clouds document, visited first in every exploration: just past each one where
# settings let it through, so a contract cannot pass only because the generator missed its edge.
EDGES = {
    "aws": [
        edge("aws", ping8Cidrs=_hosts(61)),  # 61 inbound and 61 outbound rules in one group
        edge("aws", trustedCidrs=["203.0.113.10/32"]),  # the PING8 app is also a trusted network
        edge("aws", aws={"vpcCidr": "10.0.0.0/8", "mtaSubnetCidr": "10.0.0.0/29", "proxySubnetCidr": "10.0.0.8/29"}),
        edge("aws", domain=long_domain(250), mtaHosts=["m" * 63]),  # an FQDN past 253 characters
        edge("aws", stack="s" * 100),
    ],
    "hcloud": [
        edge("hcloud", proxyHosts=[f"px{i}" for i in range(98)]),  # MTA user data past 32 KiB
        edge(
            "hcloud",
            **dict.fromkeys(["ping8Cidrs", "trustedCidrs", "resolverCidrs", "ntpCidrs", "adminCidrs"], _hosts(100)),
        ),
        edge("hcloud", stack="prod.", mtaHosts=["m" * 63]),  # a label value and a volume name
        edge("hcloud", domain=long_domain(250), mtaHosts=["m" * 63]),
        edge(
            "hcloud",
            hcloud={"networkCidr": "10.43.0.0/25", "mtaSubnetCidr": "10.43.0.0/26", "proxySubnetCidr": "10.43.0.64/26"},
        ),
    ],
}
