"""Issue 10, "One property over both": generated stack configs for both clouds, valid and hostile, through the
documented paths, and the invariant that ties settings, the program, the real tools and the policy pack together.

- Never a traceback: `settings_of` returns Settings or raises ConfigError; the program under mocks runs or raises
  `pulumi.RunError` with the same `kumomta:<key>: <reason>` lines (or the documented `aws:region:` line).
- A refused config gets one line per bad key, each naming a key of the config or a required one, and every
  hostile value the generator knows to be bad (a bool for a port, "+9200", a snake_case key, a name with a
  newline, a guarded port opened to public space...) is refused, naming its key where its own check refuses it.
- An accepted config is planned, and what every host gets passes the real tools: user data `cloud-init schema`
  (and the cloud's size limit), the bundle's nftables file `nft -c`, its Nginx site `nginx -t` (with the
  placeholder certificate of its first boot), its Lua policies `luac5.4 -p`, chrony.conf `chronyd -p`; the pack
  finds no MANDATORY violation in the planned resources.
- A stack file, however hand-edited, is read or refused in one line by what `make plan` runs first.

Refusals are cheap, so one test draws many hostile configs; accepted ones cost about a second each (the mocks,
then the tools), so the mixed test draws fewer. `KUMOMTA_PROPERTY_HOSTILE`, `KUMOMTA_PROPERTY_EXAMPLES` and
`KUMOMTA_PROPERTY_FILES` change the counts; `python -m tests.property.explore` counts over thousands without
stopping at the first failure. Cases worth keeping go to corpus.yaml (test_corpus.py).
"""

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.property import checks
from tests.property.strategies import Case, cases, stack_files
from tests.property.summary import COUNTS
from tools.mockrun import run_program, stack_config

# Configs with a value the program must refuse: cheap (settings stop them), so many.
HOSTILE = int(os.environ.get("KUMOMTA_PROPERTY_HOSTILE", "800"))
# Configs with 0 to 3 edits, about half of them planned: each of those costs about a second (mocks, tools, pack).
MIXED = int(os.environ.get("KUMOMTA_PROPERTY_EXAMPLES", "100"))
# Stack files as text, read as `make plan` reads them: cheap.
FILES = int(os.environ.get("KUMOMTA_PROPERTY_FILES", "300"))
SETTINGS = {
    "deadline": None,
    "print_blob": True,
    # No shrinking: each attempt re-runs the mocks and the tools, minutes for one failure. A failing config is
    # printed as drawn; keep the interesting ones, reduced by hand, in corpus.yaml.
    "phases": [Phase.explicit, Phase.reuse, Phase.generate],
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
}


def _judged(tools, case: Case) -> None:
    COUNTS["tried"] += 1
    COUNTS["exposures"] += case.exposure
    try:
        verdict = checks.judge(case, tools)
    except checks.Broken as err:
        COUNTS["tracebacks" if isinstance(err, checks.Traceback) else "broken"] += 1
        raise
    if verdict.refused is not None:
        COUNTS["refused"] += 1
        COUNTS["caught"] += case.exposure
    else:
        COUNTS["accepted"] += 1
        COUNTS.update({f"files {tool}": n for tool, n in verdict.tools.items()})


@settings(max_examples=HOSTILE, **SETTINGS)
@given(case=cases(hostile=True))
def test_a_hostile_config_is_refused_one_line_a_key_naming_its_key(tools, case: Case):
    _judged(tools, case)


@settings(max_examples=MIXED, **SETTINGS)
@given(case=cases())
def test_every_config_is_refused_one_line_a_key_or_planned_for_tools_that_accept_it(tools, case: Case):
    _judged(tools, case)


@settings(max_examples=FILES, **SETTINGS)
@given(text=stack_files())
def test_a_stack_file_is_read_or_refused_in_one_line(tmp_path_factory, text: str):
    """`make plan` reads Pulumi.<stack>.yaml itself: YAML that isn't a mapping, other tags, non-string keys, dates
    and syntax errors are one line each (issue 10, "The plan tool itself"), never a traceback."""
    COUNTS["stack files"] += 1
    checks.read_stack_file(tmp_path_factory.mktemp("stack"), text)


# Faults planted in what a real plan renders, as issue 10 found them (`mtaHosts: ["mta\n"]` made a site and a
# firewall header that `nginx -t` and `nft -c` refuse): each tool must refuse its own.
FAULTS = {
    "nft -c": ("mta", "firewall", lambda text: text.replace("KumoMTA host mta.", "KumoMTA host mta\n.")),
    "nginx -t": ("mta", "site", lambda text: text.replace("mta.yourdomain.com", "mta\n.yourdomain.com")),
    "luac -p": ("proxy", "lua", lambda text: text.replace("policy for proxy.", "policy for proxy\n.")),
    "chronyd -p": ("mta", "chrony", lambda text: text + "server 192.0.2.1 iburst frobnicate\n"),
    "cloud-init schema": ("proxy", "user data", lambda text: text + "packages: 3\n"),
    "placeholder certificate": ("mta", "site", lambda text: text.replace("mta.yourdomain", "m" * 60 + ".yourdomain")),
}
PATHS = {"firewall": "/etc/nftables.conf", "site": "/etc/nginx/conf.d/kumomta.conf", "chrony": "/etc/chrony/chrony.conf",
         "lua": "/opt/kumomta/etc/proxy/proxy.lua"}  # fmt: skip


@pytest.mark.parametrize("tool", list(FAULTS))
def test_each_tool_refuses_a_fault_planted_in_a_real_plan(tools, monkeypatch, tool):
    """The check is not vacuous: the prod plan passes, and the same plan with one fault does not."""
    run = run_program(checks.STACK, stack_config("prod"))
    checks.check_rendered(run, "aws", tools)
    label, part, fault = FAULTS[tool]
    real = checks.hosts

    def planted(run, cloud):
        found = real(run, cloud)
        role, user_data, bundle = found[label]
        if part == "user data":
            user_data = fault(user_data)
        for entry in bundle["files"]:
            if entry["path"] == PATHS.get(part):
                entry["content"] = fault(entry["content"])
        found[label] = (role, user_data, bundle)
        return found

    monkeypatch.setattr(checks, "hosts", planted)
    with pytest.raises(checks.Broken, match=tool.split()[0]):
        checks.check_rendered(run, "aws", tools)


def test_the_running_pack_guards_the_stacks_own_metrics_port(tools):
    """One pack serves every config: a metrics port outside the pack's defaults (9090-9101, 9464) is guarded
    because the config names it, as the engine's PULUMI_CONFIG would tell a freshly started pack."""
    values = {**stack_config("prod"), "kumomta:proxyMetricsPort": 12345}
    run = run_program(checks.STACK, values)
    assert not [v for v in tools.analyze(run, values) if v.level == "mandatory"]
    (rule,) = [r for r in run.registrations if r.inputs.get("fromPort") == 12345]
    rule.inputs["cidrIpv4"] = rule.state["cidrIpv4"] = "0.0.0.0/0"
    found = {v.policy for v in tools.analyze(run, values) if v.level == "mandatory"}
    assert "no-public-metrics" in found
    assert not {v.policy for v in tools.analyze(run, stack_config("prod")) if v.level == "mandatory"}
