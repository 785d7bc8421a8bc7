"""Cloud contracts: what AWS and Hetzner enforce on every value the program sends, over generated stacks.

Each contract in `table.py` is checked over the registered resources of the same generated stack
configs: one exploration per cloud plans each config once and records, per contract, the first config
that breaks it; each contract is then its own test, named after it. A config that settings refuse (one
`kumomta:` line per bad key) has nothing to check; any other error fails
`test_configs_plan_or_are_refused_in_kumomta_lines`. Boundaries the clouds document (`configs.EDGES`)
are visited first, then the generated configs. A contract the program is known to break (a bug reported
for components/, `PROGRAM_BUGS`) fails with a first line that says so.

The examples are derandomized, so every run explores the same configs (Hypothesis also draws constants
from the modules loaded, so this file alone explores a slightly different set than `make test`, each
reproducibly). `CONTRACT_EXAMPLES` changes how many, `CONTRACT_SEED` explores a different sequence,
and `CONTRACT_SHRINK=1` has Hypothesis minimise a failing config (minutes for a big fleet).
"""

import json
import os
from collections import Counter
from copy import deepcopy
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, example, find, given, seed, settings
from hypothesis.errors import NoSuchExample

from tests.contracts import table
from tests.contracts.checks import Across, Value
from tests.contracts.configs import EDGES, StackConfig, outcome, stack_configs
from tools.mockrun import stack_config

EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "25"))
SEED = os.environ.get("CONTRACT_SEED")

CONTRACT_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


# Contracts the program breaks today: program bugs reported to the lead for components/ to fix (contracts2 branch
# report). Their tests fail on purpose until then, and say so; remove an entry once its test passes.
PROGRAM_BUGS: dict[str, str] = {}


def clouds(contract) -> set[str]:
    """The configs a contract is checked under: DNS records and DKIM keys come from either cloud, the remote
    Command only from Hetzner's day-2 push."""
    out = set()
    for type_ in contract.types:
        if type_.startswith(("aws:route53", table.H_ZONE, table.H_RRSET, "tls:")):
            out |= {"aws", "hcloud"}
        else:
            out.add("hcloud" if type_.startswith(("hcloud:", "command:")) else "aws")
    return out


def of_cloud(cloud: str) -> list:
    return [contract for contract in table.CONTRACTS if cloud in clouds(contract)]


def problems(contract, config: StackConfig) -> list[str]:
    result = outcome(config)
    if result.exhausted and contract.name == table.SUBNET_CAPACITY:
        return [result.exhausted]
    return contract.problems(result.run) if result.run is not None else []


@dataclass
class Exploration:
    """What one pass over the generated configs of a cloud found."""

    cloud: str
    outcomes: Counter = field(default_factory=Counter)
    broken: dict = field(default_factory=dict)  # contract name -> (first failing config, its problems)
    crashes: list = field(default_factory=list)

    def visit(self, config: StackConfig) -> None:
        result = outcome(config)
        kind = next(k for k in ("run", "refused", "exhausted", "crash") if getattr(result, k) is not None)
        self.outcomes[kind] += 1
        if result.crash:
            self.crashes.append((config, result.crash))
        for contract in of_cloud(self.cloud):
            if contract.name not in self.broken and (found := problems(contract, config)):
                self.broken[contract.name] = (config, found)


_EXPLORED: dict[str, Exploration] = {}


def explored(cloud: str) -> Exploration:
    """The exploration of a cloud's configs, done once per session."""
    if cloud not in _EXPLORED:
        exploration = Exploration(cloud)

        def visit(config):
            exploration.visit(config)

        for config in EDGES[cloud]:
            visit = example(config=config)(visit)
        visit = CONTRACT_SETTINGS(given(config=stack_configs(cloud))(visit))
        (seed(int(SEED))(visit) if SEED else visit)()
        _EXPLORED[cloud] = exploration
    return _EXPLORED[cloud]


def minimal(contract, cloud: str, first: StackConfig) -> StackConfig:
    """With CONTRACT_SHRINK, the simplest config Hypothesis finds that breaks the contract."""
    if not os.environ.get("CONTRACT_SHRINK"):
        return first
    try:
        return find(
            stack_configs(cloud),
            lambda config: bool(problems(contract, config)),
            settings=settings(CONTRACT_SETTINGS, phases=[Phase.generate, Phase.shrink]),
        )
    except NoSuchExample:
        return first


def broken(contract, found: list[str]) -> str:
    shown = "\n".join(f"  - {p}" for p in found[:8])
    more = f"\n  ... and {len(found) - 8} more" if len(found) > 8 else ""
    bug = PROGRAM_BUGS.get(contract.name)
    known = f"PROGRAM BUG, reported for components/ to fix: {bug}\n" if bug else ""
    return (
        f"{known}contract {contract.name} broken: {contract.rule}\n  source: {contract.source}\n"
        f'  "{contract.quote}"\n{shown}{more}'
    )


def check(contract, cloud: str) -> None:
    if contract.name in (found := explored(cloud).broken):
        config, first_problems = found[contract.name]
        config = minimal(contract, cloud, config)
        pytest.fail(f"{broken(contract, problems(contract, config) or first_problems)}\n\n{config!r}", pytrace=False)


@pytest.mark.parametrize("contract", of_cloud("aws"), ids=repr)
def test_aws_contract(contract):
    check(contract, "aws")


@pytest.mark.parametrize("contract", of_cloud("hcloud"), ids=repr)
def test_hcloud_contract(contract):
    check(contract, "hcloud")


@pytest.mark.parametrize("cloud", ["aws", "hcloud"])
def test_configs_plan_or_are_refused_in_kumomta_lines(cloud):
    exploration = explored(cloud)
    assert exploration.crashes == [], "the program failed with something other than a config error"


@pytest.mark.parametrize("cloud", ["aws", "hcloud"])
def test_most_generated_configs_plan_and_some_are_refused(cloud):
    # Contracts hold vacuously over refused configs: most of what is generated must get through settings,
    # and some must not (configs.SPOILERS), so the refusal path is explored too.
    counts = explored(cloud).outcomes
    assert counts["run"] >= sum(counts.values()) * 2 / 3, dict(counts)
    assert counts["refused"] >= 1, dict(counts)


# ---- the table itself ----------------------------------------------------------------------------

SAMPLED = [c for c in table.CONTRACTS if isinstance(c, Value) and (c.accepts or c.rejects)]


@pytest.mark.parametrize("contract", SAMPLED, ids=repr)
def test_each_predicate_takes_what_its_source_allows_and_refuses_the_rest(contract):
    assert [v for v in contract.accepts if not contract.ok(v)] == []
    assert [v for v in contract.rejects if contract.ok(v)] == []


def test_every_contract_names_a_source_and_a_rule():
    for contract in table.CONTRACTS:
        assert contract.source.startswith("https://"), contract.name
        assert contract.quote and contract.rule, contract.name
    names = [c.name for c in table.CONTRACTS]
    assert len(names) == len(set(names))


# Fixed configs that between them register every kind of resource the program makes.
FIXED = [
    StackConfig("prod", stack_config("prod")),
    StackConfig(
        "prod",
        {
            **stack_config("prod"),
            "kumomta:ipv6": True,
            "kumomta:adminCidrs": ["10.0.0.0/8"],
            "kumomta:dns": {"provider": "hcloud", "zone": "yourdomain.com", "create": True},
        },
    ),
    StackConfig("prod", {**stack_config("prod"), "kumomta:aws": {"vpcId": "vpc-1", "subnetId": "subnet-1"}}),
    StackConfig("prod-hcloud", {**stack_config("prod-hcloud"), "kumomta:ipv6": True}),
    StackConfig(
        "prod-hcloud",
        {
            **stack_config("prod-hcloud"),
            "aws:region": "eu-central-1",
            "kumomta:dns": {"provider": "route53", "zoneId": "Z0123456789ABCDEFGHIJ"},
        },
    ),
]


@pytest.fixture(scope="module")
def registered() -> dict[str, set[str]]:
    """Registered custom resource type -> the input properties the program sends."""
    found: dict[str, set[str]] = {}
    for config in FIXED:
        result = outcome(config)
        assert result.run is not None, result.refused or result.crash
        for reg in result.run.registrations:
            if reg.custom:
                found.setdefault(reg.type, set()).update(reg.inputs)
    return found


def test_every_property_sent_has_a_contract_or_a_reason(registered):
    read: dict[str, set[str]] = {}
    for contract in table.CONTRACTS:
        for type_ in contract.types:
            read.setdefault(type_, set()).update(contract.reads)
    unjudged = {
        f"{type_}.{prop}"
        for type_, props in registered.items()
        for prop in props
        if prop not in read.get(type_, set())
        and prop not in table.UNCONSTRAINED["*"]
        and prop not in table.UNCONSTRAINED.get(type_, {})
    }
    assert unjudged == set(), "add a contract to table.py, or the reason there is none to UNCONSTRAINED"


@pytest.mark.parametrize("contract", table.CONTRACTS, ids=repr)
def test_each_contract_meets_resources_the_program_registers(contract, registered):
    assert any(t in registered for t in contract.types), f"none of {contract.types} is registered: a typo, or stale"


# ---- each cross-resource contract can fail ---------------------------------------------------------


def _first(run, type_: str, kind: str | None = None):
    """The first registration of `type_` (of record type `kind`, for DNS records)."""
    return next(reg for reg in run.registrations if reg.type == type_ and kind in (None, reg.inputs.get("type")))


def _set(type_: str, key: str, value, kind: str | None = None):
    """Break a contract by setting one input of the first registration of `type_` (and record type `kind`)."""
    return lambda run: _first(run, type_, kind).inputs.__setitem__(key, value)


def _repeat(type_: str, times: int):
    """Break a count contract by registering the first `type_` registration again `times` times."""

    def change(run):
        original = _first(run, type_)
        run.registrations += [deepcopy(original) for _ in range(times)]

    return change


def _rename_second_like_first(type_: str):
    def change(run):
        first, second = [reg for reg in run.registrations if reg.type == type_][:2]
        second.inputs["name"] = first.inputs["name"]

    return change


def _first_rule(key: str, value):
    return lambda run: _first(run, table.H_FIREWALL).inputs["rules"][0].__setitem__(key, value)


_HCLOUD_V6 = 3  # FIXED[3]: Hetzner with IPv6
BREAKERS = {
    "ec2.security-group.name": (0, _set(table.SG, "name", "sg-mta")),
    "ec2.security-group-rule.port-range": (0, _set(table.INGRESS, "fromPort", 0.0)),
    "ec2.security-group-rule.one-peer": (0, _set(table.INGRESS, "cidrIpv6", "::/0")),
    "ec2.security-group.rules-per-direction": (0, _repeat(table.INGRESS, 60)),
    "ec2.security-group.no-duplicate-rule": (0, _repeat(table.EGRESS, 1)),
    "ec2.network-interface.groups": (0, _set(table.ENI, "securityGroups", ["sg-1"] * 6)),
    "iam.role.name": (0, _set(table.ROLE, "name", "kumomta mta")),
    "iam.instance-profile.name": (0, _set(table.PROFILE, "name", "p" * 129)),
    "iam.role-policy.name": (0, _set(table.ROLE_POLICY, "name", "read token")),
    "iam.role.inline-policy-size": (0, _set(table.ROLE_POLICY, "policy", json.dumps({"Statement": ["s" * 10240]}))),
    "iam.role.managed-policies": (0, _repeat(table.ROLE_ATTACH, 10)),
    "ssm.parameter.value": (0, _set(table.SSM, "insecureValue", "v" * 8193)),
    "kms.key.policy-lockout": (
        0,
        _set(table.KMS_KEY, "policy", json.dumps({"Statement": [{"Effect": "Allow", "Action": "kms:*"}]})),
    ),
    "kms.key.rotation-symmetric": (0, _set(table.KMS_KEY, "customerMasterKeySpec", "RSA_2048")),
    "vpc.subnet.inside-vpc": (0, _set(table.SUBNET, "cidrBlock", "192.168.0.0/24")),
    "vpc.subnet.capacity": (0, _repeat(table.ENI, 251)),
    "ec2.eip-domain-name.forward-record": (0, _set(table.EIP_PTR, "domainName", "elsewhere.yourdomain.com")),
    "ebs.attachment.same-zone": (0, _set(table.EBS, "availabilityZone", "eu-central-1c")),
    "route53.record.values": (0, _set(table.RECORD, "records", ["2001:db8::1"], kind="A")),
    "route53.record.txt": (0, _set(table.RECORD, "records", ["p=" + "k" * 300], kind="TXT")),
    "hcloud.server.network-zone": (_HCLOUD_V6, _set(table.H_SERVER, "location", "ash")),
    "hcloud.volume.same-location": (_HCLOUD_V6, _set(table.H_VOLUME, "location", "hel1")),
    "hcloud.primary-ip.same-location": (_HCLOUD_V6, _set(table.H_PRIMARY_IP, "location", "hel1")),
    "hcloud.firewall.effective-rules": (
        _HCLOUD_V6,
        _first_rule("sourceIps", [f"10.0.{i // 256}.{i % 256}/32" for i in range(500)]),
    ),
    "hcloud.firewall.rule-shape": (_HCLOUD_V6, _first_rule("protocol", "sctp")),
    "hcloud.subnet.inside-network": (_HCLOUD_V6, _set(table.H_SUBNET, "ipRange", "192.168.0.0/24")),
    "hcloud.rdns.address": (_HCLOUD_V6, _set(table.H_RDNS, "ipAddress", "203.0.113.1")),
    "hcloud.names.unique": (_HCLOUD_V6, _rename_second_like_first(table.H_SERVER)),
    "hcloud.rrset.relative": (1, _set(table.H_RRSET, "name", "mta.yourdomain.com")),
    "hcloud.rrset.values": (1, _set(table.H_RRSET, "records", [{"value": "2001:db8::1"}], kind="A")),
    "hcloud.rrset.txt": (1, _set(table.H_RRSET, "records", [{"value": "v=spf1 -all"}], kind="TXT")),
    "hcloud.server.private-ip": (
        _HCLOUD_V6,
        lambda run: _first(run, table.H_SERVER).inputs["networks"][0].__setitem__("ip", "10.43.2.1"),
    ),
}

ACROSS = [contract for contract in table.CONTRACTS if isinstance(contract, Across)]


@pytest.mark.parametrize("contract", ACROSS, ids=repr)
def test_each_cross_resource_contract_fails_on_a_broken_plan(contract):
    assert contract.name in BREAKERS, f"add a way to break {contract.name} to BREAKERS"
    fixed, breaker = BREAKERS[contract.name]
    run = deepcopy(outcome(FIXED[fixed]).run)
    before = contract.problems(run)
    breaker(run)
    assert len(contract.problems(run)) > len(before)
