"""The regression corpus (corpus.yaml): the configs issue 10 lists and those the property found, each replayed
through the property's own checks with its expected outcome: refused with exactly these lines, or planned and
accepted by the real tools and the pack; and stack files that `make plan` must answer with one line."""

import re
from pathlib import Path

import pytest
import yaml

from components.settings import ConfigError
from tests.property import checks
from tests.property.strategies import Case
from tools.mockrun import StackFileError, settings_of, stack_config

HERE = Path(__file__).resolve().parent
CORPUS = yaml.safe_load((HERE / "corpus.yaml").read_text())
CASES = CORPUS["cases"]
STACK_FILES = CORPUS["stack_files"]


def _expand(value):
    """`{each: "p{}", count: 300}` is that many entries, numbered from 0: a fleet or a long list, written short."""
    if isinstance(value, dict) and set(value) == {"each", "count"}:
        return [value["each"].format(i) for i in range(value["count"])]
    return value


def values_of(case: dict) -> dict:
    """The base stack's values with `set` applied: sections merged key by key, `null` removing a key."""
    values = stack_config(case["base"])
    for key, value in (case.get("set") or {}).items():
        value = _expand(value)
        if value is None:
            values.pop(key, None)
        elif isinstance(value, dict) and isinstance(values.get(key), dict):
            merged = {**values[key], **{k: _expand(v) for k, v in value.items()}}
            values[key] = {k: v for k, v in merged.items() if v is not None}
        else:
            values[key] = value
    return values


def _matches(lines: list[str], expected: list[str]) -> bool:
    if len(lines) != len(expected):
        return False
    pairs = zip(lines, expected, strict=True)
    return all(line.startswith(want[:-3]) if want.endswith("...") else line == want for line, want in pairs)


@pytest.fixture(autouse=True)
def _no_region_from_the_environment(monkeypatch):
    """The AWS provider falls back to these when `aws:region` is missing; the corpus says what the file says."""
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_corpus_config(tools, case):
    values = values_of(case)
    cloud = values.get("kumomta:cloud")
    if case.get("settings_only"):
        # A fleet the mocks would take half a minute over: what settings say is the point of the case.
        settings_of(values)
        assert case["accepted"] is True
        return
    verdict = checks.judge(Case(cloud, values), tools)
    refused = verdict.refused
    if "refused" in case:
        assert refused is not None, "planned a config the corpus says is refused"
        if case["refused"] is True:  # any wording, one line per key (judge checks that), naming one of `naming`
            named = {(m := checks.LINE.fullmatch(line))["region"] or m["key"] or "" for line in refused}
            assert {re.split(r"[.\[]", key)[0] for key in named} & set(case["naming"]), refused
        else:
            assert _matches(refused, case["refused"]), "\n".join(refused)
    else:
        assert case["accepted"] is True
        assert refused is None, "\n".join(refused)
        checked, hosts = verdict.tools["cloud-init schema"], len(checks.hosts(verdict.run, cloud))
        assert checked == hosts, f"user data of {checked} of {hosts} hosts checked"


@pytest.mark.parametrize("case", STACK_FILES, ids=[c["id"] for c in STACK_FILES])
def test_corpus_stack_file(tmp_path, case):
    """What `make plan` does first (tools/plan.py): read Pulumi.<stack>.yaml, then settings; one line, or a plan.
    A traceback fails here as it fails the plan."""
    (tmp_path / "Pulumi.corpus.yaml").write_text(case["text"])
    try:
        settings_of(stack_config("corpus", root=tmp_path))
    except (StackFileError, ConfigError) as err:
        text = str(err)
    else:
        text = None
    want = case["error"]
    if want is None:
        assert text is None, text
    elif want == "one line or read as Pulumi reads it":
        assert text is None or len(text.splitlines()) == 1, text
    else:
        assert text is not None, "read without an error"
        assert len(text.splitlines()) == 1, text
        assert text.startswith(want[:-3]) if want.endswith("...") else text == want, text
