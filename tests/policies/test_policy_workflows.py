"""The GitHub workflows: actionlint and shellcheck find nothing, and the workflows keep issue 4's
promises (the pack runs on every preview and update, one concurrency group per stack, no secrets
where fork code runs) and issue 13's (tests on every pull request, previews with the stacks' secrets)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
LINTER = ROOT / "tools" / "actionlint" / "bin" / "actionlint"


def actionlint(*files: Path) -> subprocess.CompletedProcess:
    if not LINTER.exists():
        pytest.skip("actionlint is not built: `make test` builds it with Go (make tools/actionlint/bin/actionlint)")
    command = [str(LINTER), "-no-color", *map(str, files)]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def steps(name: str, job: str) -> list[dict]:
    return workflow(name)["jobs"][job]["steps"]


def pulumi_step(name: str, job: str) -> dict:
    (step,) = [s for s in steps(name, job) if s.get("uses", "").startswith("pulumi/actions@")]
    return step["with"]


def test_every_workflow_passes_actionlint():
    result = actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert (result.returncode, result.stdout) == (0, "")


def test_actionlint_does_find_mistakes(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    result = actionlint(bad)
    assert result.returncode == 1
    assert 'property "nope" is not defined' in result.stdout


def test_actionlint_is_the_pinned_release_built_from_source():
    if not LINTER.exists():
        pytest.skip("actionlint is not built: `make test` builds it with Go")
    version = subprocess.run([str(LINTER), "-version"], capture_output=True, text=True, check=True).stdout
    pinned = re.search(r"^ACTIONLINT_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    assert version.splitlines()[0] == f"v{pinned}"


def test_actionlint_knows_the_inputs_of_every_action_the_workflows_use(tmp_path):
    # A made-up input on each `uses:` must be reported: the linter has that action version's inputs
    # (actionlint's popular_actions.go); an action it doesn't know would pass silently.
    used = sorted(
        {
            s["uses"]
            for path in WORKFLOWS.glob("*.yml")
            for job in yaml.safe_load(path.read_text())["jobs"].values()
            for s in job["steps"]
            if "uses" in s
        }
    )
    assert "actions/checkout@v5" in used and "pulumi/actions@v6" in used
    steps_yaml = "".join(f"      - uses: {u}\n        with:\n          no-such-input: x\n" for u in used)
    bad = tmp_path / "inputs.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n" + steps_yaml)
    result = actionlint(bad)
    flagged = {
        m.group(1) for m in re.finditer(r'input "no-such-input" is not defined in action "([^"]+)"', result.stdout)
    }
    assert flagged == set(used)


def test_every_run_step_passes_shellcheck(tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job_name, job in yaml.safe_load(path.read_text())["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    script = tmp_path / f"{path.stem}-{job_name}-{index}.sh"
                    # GitHub substitutes ${{ }} before bash runs; a plain word stands in for it here.
                    script.write_text("#!/usr/bin/env bash\nset -e\n" + re.sub(r"\$\{\{.*?\}\}", "x", step["run"]))
                    scripts.append(str(script))
    result = subprocess.run(["shellcheck", "--severity=style", *scripts], check=False, capture_output=True, text=True)
    assert len(scripts) >= 6
    assert (result.returncode, result.stdout) == (0, "")


def test_preview_runs_the_pack_with_a_diff_and_a_comment_and_posts_failures_itself():
    action = pulumi_step("preview.yml", "preview")
    assert (action["command"], action["diff"], action["policyPacks"], action["comment-on-pr"]) == (
        "preview",
        True,
        "policies",
        True,
    )
    fallback = steps("preview.yml", "preview")[-1]
    assert fallback["if"] == "failure() && steps.preview.outcome == 'failure'"
    assert "--policy-pack policies" in fallback["run"]


def test_deploy_runs_up_with_the_pack_one_concurrency_group_per_stack():
    job = workflow("deploy.yml")["jobs"]["up"]
    assert job["concurrency"] == {"group": "pulumi-up-${{ matrix.stack }}", "cancel-in-progress": False}
    assert job["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.list) }}"
    action = pulumi_step("deploy.yml", "up")
    assert (action["command"], action["policyPacks"]) == ("up", "policies")
    assert workflow("deploy.yml")[True] == {"push": {"branches": ["main"]}}  # YAML reads the `on` key as True


def test_fork_pull_requests_get_a_plan_without_secrets_or_write_access():
    text = (WORKFLOWS / "plan.yml").read_text()
    assert "secrets." not in text
    assert workflow("plan.yml")["permissions"] == {"contents": "read"}
    assert any("python -m tools.plan" in s.get("run", "") for s in steps("plan.yml", "plan"))


def test_the_comment_workflow_never_checks_out_pull_request_code():
    comment = workflow("plan-comment.yml")
    assert comment[True]["workflow_run"]["workflows"] == [workflow("plan.yml")["name"]]
    assert not any(s.get("uses", "").startswith("actions/checkout") for s in steps("plan-comment.yml", "comment"))


def test_every_stack_file_gets_a_job():
    script = steps("plan.yml", "stacks")[1]["run"].replace('>> "$GITHUB_OUTPUT"', "")
    listing = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    expected = [p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml")]
    assert sorted(json.loads(listing.stdout.strip().removeprefix("list="))) == sorted(expected)


def test_every_pull_request_runs_lint_and_the_whole_suite_on_a_hosted_runner():
    test = workflow("test.yml")
    assert "pull_request" in test[True]
    (job,) = test["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    assert steps("test.yml", "test")[-1]["run"] == ".ci/run"  # which installs the tools, then `make test`


def test_previews_read_the_secrets_of_the_stacks_environment_without_recording_a_deployment():
    preview = workflow("preview.yml")["jobs"]["preview"]
    deploy = workflow("deploy.yml")["jobs"]["up"]
    assert preview["environment"] == {"name": "${{ matrix.stack }}", "deployment": False}
    assert deploy["environment"] == "${{ matrix.stack }}"
    assert preview["env"] == deploy["env"]


def test_the_plan_comment_is_built_by_the_tested_builder_and_posting_goes_on_after_a_failure():
    assert any("python -m tools.comment" in s.get("run", "") for s in steps("plan.yml", "plan"))
    script = steps("plan-comment.yml", "comment")[-1]["run"]
    assert "failed=1" in script and script.rstrip().endswith('exit "$failed"')
    assert "body=@" in script  # the body goes as a file, not an argument
