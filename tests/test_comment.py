"""The pull-request comment (tools/comment.py) fits GitHub's limit however big the plan, keeps the diff
first, and says where the rest is. GitHub refuses a comment body over 65,536 characters ("Body is too
long (maximum is 65536 characters)"); a 25+25 fleet's plan made an 80 KB comment."""

import uuid

import pytest
import yaml

from tests.stacks import plan
from tools import comment
from tools.mockrun import ROOT, stack_config

FULL = "the full plan is plan.txt in the plan-prod artifact"


def test_a_small_plan_goes_in_whole_under_its_marker():
    text = "Plan for stack 'prod'\n\nChanges against main:\n  ~ mta-instance\nResources: ~ 1 to update\n\nKumoMTA host ports\nrow\n"
    body = comment.build("prod", text, 0, "main", FULL)
    assert body.splitlines()[0] == "<!-- kumoguard-plan:prod -->"
    assert "### Offline plan of `prod` against `main`" in body
    assert "```diff\nPlan for stack 'prod'\n\nChanges against main:\n  ~ mta-instance\n" in body
    assert (
        "<details><summary>Effective port matrix and policy pack</summary>\n\n```\nKumoMTA host ports\nrow\n```" in body
    )
    assert FULL not in body


def test_a_failed_plan_says_which_exit_and_what_it_means():
    body = comment.build("prod", "x\n", 3, "main", FULL)
    assert "**Plan failed (exit 3):** a protected resource (sending IP, spool volume, DNS zone) would be" in body


@pytest.fixture
def fleet():
    """A 25+25 stack next to the real ones, removed afterwards."""
    name = f"test-fleet-{uuid.uuid4().hex[:8]}"
    path = ROOT / f"Pulumi.{name}.yaml"
    hosts = {"kumomta:mtaHosts": [f"mta{i}" for i in range(25)], "kumomta:proxyHosts": [f"proxy{i}" for i in range(25)]}
    wide = {"kumomta:ipv6": True, "kumomta:trustedCidrs": [f"198.51.100.{i * 16}/28" for i in range(12)]}
    path.write_text(yaml.safe_dump({"config": {**stack_config("prod"), **hosts, **wide}}))
    yield name
    path.unlink(missing_ok=True)


def test_a_25_plus_25_fleet_fits_with_the_diff_first_and_a_note(fleet):
    done = plan("--stack", fleet)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > comment.LIMIT  # too long for GitHub as it is
    body = comment.build(fleet, done.stdout, done.returncode, "main", FULL)
    assert len(body) <= comment.LIMIT
    assert body.count("```") % 2 == 0  # every fence is closed
    assert f"… cut to fit GitHub's comment limit: {FULL}" in body
    assert body.index("Changes against") < body.index(FULL)
    assert body.rstrip().endswith("```") or body.rstrip().endswith("</details>")


def test_a_cut_diff_keeps_whole_lines_and_drops_the_details():
    text = "Changes against main:\n" + "".join(f"  + rule-{i}  (aws:vpc/x:Y)  create\n" for i in range(5000))
    body = comment.build("prod", text + "\nKumoMTA host ports\nrow\n", 0, "main", FULL)
    kept = body.split("```diff\n", 1)[1].split("\n… cut", 1)[0].splitlines()
    assert kept[-1].endswith("create") and len(kept) > 1000
    assert "KumoMTA host ports" not in body and len(body) <= comment.LIMIT


def test_wide_characters_count_as_github_counts_them():
    text = "Changes against main:\n" + "🙂 x\n" * 40_000
    body = comment.build("prod", text, 0, "main", FULL)
    assert len(body.encode("utf-16-le")) // 2 <= comment.LIMIT


def test_the_command_writes_the_file(tmp_path):
    (tmp_path / "plan.txt").write_text("Changes against main:\nResources: 3 unchanged\n")
    out = tmp_path / "comment.md"
    args = ["--stack", "prod", "--plan", str(tmp_path / "plan.txt"), "--status", "0", "--base-ref", "main"]
    assert comment.main([*args, "--out", str(out)]) == 0
    assert out.read_text().startswith("<!-- kumoguard-plan:prod -->\n")
