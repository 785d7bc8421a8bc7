"""`make plan` as a change preview: per resource what `pulumi preview --diff` would show, replacements
predicted from the provider schemas, protected resources refused, and what running hosts won't see."""

import json
import subprocess
import textwrap
import uuid

import pytest
import yaml

from tests.stacks import plan
from tools import diff as diffs
from tools.mockrun import ROOT, run_program, stack_config


def records(stack: str = "prod", **overrides) -> list[dict]:
    """A stack planned with `kumomta:` overrides; objects such as `aws` are merged into the stack file's."""
    values = stack_config(stack)
    merged = {}
    for key, value in overrides.items():
        current = values.get(f"kumomta:{key}")
        merged[f"kumomta:{key}"] = {**current, **value} if isinstance(current, dict) else value
    return diffs.records(run_program(stack, {**values, **merged}), salt="test")


def changed(diff: diffs.Diff) -> dict[str, diffs.Step]:
    return {step.record["name"]: step for step in diff.steps if step.op != "same"}


def test_a_bigger_mta_and_spool_on_aws_are_two_updates_in_place_and_say_what_they_do():
    base = records(aws={"mtaInstanceType": "t3.medium"})
    head = records(aws={"mtaInstanceType": "t3.xlarge", "spoolVolumeGb": 500})
    diff = diffs.compare(base, head, "main")
    steps = changed(diff)
    assert {name: step.op for name, step in steps.items()} == {"mta-instance": "update", "mta-spool": "update"}
    (instance_type,) = steps["mta-instance"].changes
    assert (instance_type.path, instance_type.old, instance_type.new) == ("instanceType", "t3.medium", "t3.xlarge")
    assert "stop/start" in instance_type.note
    (size,) = steps["mta-spool"].changes
    assert (size.path, size.old, size.new) == ("size", 50.0, 500.0)
    assert "kumomta-spool-grow.timer" in size.note  # the timer the MTA's first boot enables (test_scripts.py)
    assert diff.summary() == f"Resources: ~ 2 to update, {len(head) - 2} unchanged"
    text = diffs.render(diff)
    assert '      ~ instanceType: "t3.medium" => "t3.xlarge"' in text
    assert "      ~ size: 50 => 500" in text
    assert not diff.errors and not diff.hosts


def test_a_bigger_mta_and_spool_on_hetzner_are_two_updates_and_the_type_change_cuts_power():
    diff = diffs.compare(
        records("prod-hcloud"), records("prod-hcloud", hcloud={"mtaServerType": "cx43", "spoolVolumeGb": 500}), "main"
    )
    steps = changed(diff)
    assert {name: step.op for name, step in steps.items()} == {"mta-server": "update", "mta-spool": "update"}
    (server_type,) = steps["mta-server"].changes
    assert (server_type.old, server_type.new) == ("cx33", "cx43") and "cuts power" in server_type.note


def test_a_smaller_spool_is_planned_as_an_update_the_cloud_refuses():
    diff = diffs.compare(records(), records(aws={"spoolVolumeGb": 20}), "main")
    (size,) = changed(diff)["mta-spool"].changes
    assert size.note == "the cloud cannot shrink it: this update will fail"


def test_a_new_subnet_replaces_what_hangs_off_it_and_the_sending_ip_stays():
    diff = diffs.compare(records(), records(aws={"mtaSubnetCidr": "10.42.3.0/24"}), "main")
    replaced = {name for name, step in changed(diff).items() if step.op == "replace"}
    # subnet cidrBlock is ForceNew; the ENI's subnetId is then new; the instance's primary ENI is then new.
    assert {"mta-subnet", "mta-eni", "mta-instance", "mta-subnet-rt", "mta-eip-assoc"} <= replaced
    assert "mta-eip" not in replaced and not diff.errors
    eni = changed(diff)["mta-eni"]
    assert [(c.path, c.after, c.kind) for c in eni.changes] == [("subnetId", "mta-subnet", "replace")]


def test_moving_a_hetzner_stack_would_release_its_sending_ips_and_spool_and_is_an_error():
    diff = diffs.compare(records("prod-hcloud"), records("prod-hcloud", hcloud={"location": "nbg1"}), "main")
    assert sorted(diff.errors) == [
        (
            "the sending IP of mta would be released and replaced by a new address (no sending reputation, no PTR): "
            "mta-ipv4 (hcloud:index/primaryIp:PrimaryIp) is replaced, forced by location"
        ),
        (
            "the sending IP of proxy would be released and replaced by a new address (no sending reputation, no PTR): "
            "proxy-ipv4 (hcloud:index/primaryIp:PrimaryIp) is replaced, forced by location"
        ),
        (
            "the spool volume of mta would be released and replaced by a new, empty volume (queued mail stays on the "
            "old one): mta-spool (hcloud:index/volume:Volume) is replaced, forced by location"
        ),
    ]


def test_dropping_a_proxy_releases_its_sending_ip_and_the_mtas_keep_sending_through_it():
    diff = diffs.compare(records(proxyHosts=["proxy", "proxy2"]), records(), "main")
    assert {name for name, step in changed(diff).items() if step.op == "delete"} >= {"proxy2", "proxy2-eip"}
    assert diff.errors == [
        (
            "the sending IP of proxy2 would be released (retainOnDelete keeps it in the account, detached): "
            "proxy2-eip (aws:ec2/eip:Eip) is no longer in the program"
        )
    ]
    # The MTA's bundle lists the proxies: the running MTA gets the shorter list through its day-2 channel.
    assert diff.hosts == [
        (
            "mta: /opt/kumomta/etc/policy/init.lua changed; the running host applies it within 30 s (kumomta-sync "
            "polls its SSM parameter)"
        )
    ]


def test_a_firewall_change_reaches_running_hosts_by_their_channel_and_new_ones_by_first_boot():
    diff = diffs.compare(records(), records(trustedCidrs=["198.51.100.0/28"]), "main")
    assert diff.hosts == [
        (
            "mta: /etc/nftables.conf changed; the running host applies it within 30 s (kumomta-sync polls its SSM "
            "parameter)"
        ),
        (
            "mta: first-boot configuration changed; only hosts created from now on run it (running hosts get every "
            "later change through their day-2 channel)"
        ),
    ]
    assert "mta-instance" not in changed(diff)  # userDataBase64 is in ignoreChanges
    assert changed(diff)["mta-in-tcp-443-trusted-198.51.100.0-28"].op == "create"
    text = "\n".join(diffs.render(diff))
    assert "      ~ insecureValue: the host's bundle" in text
    assert '+        ip saddr 198.51.100.0/28 tcp dport 443 accept comment "in-tcp-443-trusted' in text


def test_a_hetzner_change_names_the_files_the_push_changes_without_showing_secrets():
    diff = diffs.compare(records("prod-hcloud"), records("prod-hcloud", injectToken="T" * 40), "main")
    assert diff.hosts == [
        (
            "mta: /etc/nginx/kumomta-secrets/bearer.map changed; pulumi up hands it to the running host over SSH, "
            "during the update"
        )
    ]
    assert "T" * 40 not in "\n".join(diffs.render(diff))


def test_an_unchanged_stack_has_no_steps_but_same():
    diff = diffs.compare(records(), records(), "main")
    assert {step.op for step in diff.steps} == {"same"}
    assert diff.summary() == f"Resources: {len(records())} unchanged"


PROGRAM = """
import pulumi
import pulumi_random as random

cfg = pulumi.Config("t")

class Box(pulumi.ComponentResource):
    def __init__(self, name, opts=None):
        super().__init__(cfg.require("type"), name, None, opts)
        random.RandomPassword("box-secret", length=16, special=False, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({})

was = [pulumi.Alias(name=cfg.get("was"), type_=cfg.get("wasType"))] if cfg.get("was") else None
Box(cfg.require("box"), opts=pulumi.ResourceOptions(aliases=was))
pw_was = [pulumi.Alias(name=cfg.get("pwWas"))] if cfg.get("pwWas") else None
random.RandomPassword(cfg.require("pw"), length=20, opts=pulumi.ResourceOptions(aliases=pw_was))
"""


def test_renames_with_aliases_are_matched_children_included(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: aliasing\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(PROGRAM))
    old = diffs.records(run_program("s", {"t:box": "a", "t:type": "test:index:Box", "t:pw": "p"}, root=tmp_path))
    # "c", not "b": a child whose name starts with its parent's ("box-secret" under "b") would be aliased with
    # that prefix replaced ("aox-secret"), as the engine's inheritedChildAlias does (test_renames.py).
    renamed = {"t:box": "c", "t:type": "test:index:Crate", "t:pw": "q"}
    aliased = {**renamed, "t:was": "a", "t:wasType": "test:index:Box", "t:pwWas": "p"}
    diff = diffs.compare(old, diffs.records(run_program("s", aliased, root=tmp_path)), "main")
    # The component, the password and the component's child (whose URN holds the parent's type, so it
    # changed too) all keep their state: the child through the alias its parent implies for it.
    assert {step.op for step in diff.steps} == {"same"}, diffs.render(diff)
    assert sorted(step.was.split("::", 2)[-1] for step in diff.steps) == [
        "pulumi:pulumi:Stack$random:index/randomPassword:RandomPassword::p",
        "pulumi:pulumi:Stack$test:index:Box::a",
        "test:index:Box$random:index/randomPassword:RandomPassword::box-secret",
    ]
    without = diffs.compare(old, diffs.records(run_program("s", renamed, root=tmp_path)), "main")
    assert without.summary() == "Resources: + 3 to create, - 3 to delete"


def test_secret_inputs_are_masked_before_anything_is_compared_or_written():
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2-token"}
    assert diffs.mask({"userData": secret, "n": 1.0}) == {"userData": "[secret]", "n": 1.0}
    salted = diffs.mask(secret, salt="s")
    assert salted.startswith("[secret]:") and "hunter2" not in salted
    assert salted == diffs.mask(dict(secret), salt="s") != diffs.mask(secret, salt="other")


@pytest.fixture
def stack_pair():
    """Two throw-away stack files next to the real ones: a base plan is saved from the first."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    path = ROOT / f"Pulumi.{name}.yaml"

    def write(**overrides) -> str:
        path.write_text(yaml.safe_dump({"config": {**stack_config("prod"), **overrides}}))
        return name

    yield write
    path.unlink(missing_ok=True)


def make_plan(stack: str, base: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "plan", f"STACK={stack}", f"BASE={base}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_exit_codes_reach_the_caller_of_make_plan(stack_pair, tmp_path):
    saved = tmp_path / "base.json"
    stack = stack_pair(**{"kumomta:proxyHosts": ["proxy", "proxy2"]})
    assert plan("--stack", stack, "--json", str(saved)).returncode == 0
    stack_pair()  # proxy2 removed: its sending IP would be released

    direct = plan("--stack", stack, "--base", str(saved))
    assert direct.returncode == 3
    assert "ERROR: the sending IP of proxy2 would be released" in direct.stdout

    # GNU make exits 2 whenever a recipe fails ("The exit status of make is always one of three values",
    # https://www.gnu.org/software/make/manual/html_node/Running.html); the plan's own code is on its last line.
    through_make = make_plan(stack, str(saved))
    assert through_make.returncode == 2
    assert through_make.stderr.strip().endswith("plan] Error 3")
    assert make_plan(stack, "none").returncode == 0
    bad = make_plan("no-such-stack", "none")
    assert (bad.returncode, bad.stderr.strip().splitlines()[-1].endswith("plan] Error 2")) == (2, True)
    assert bad.stderr.count("Pulumi.no-such-stack.yaml") == 1  # the missing file is named once


def test_the_default_base_is_the_merge_base_with_main_planned_from_git(tmp_path):
    out = tmp_path / "plan.json"
    done = plan("--stack", "prod", "--base", "", "--json", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    label = document["diff"]["base"]
    assert label.startswith(("main (merge base ", "origin/main (merge base ", "nothing: no main branch"))
    assert "Resources: " in done.stdout or "No diff" in done.stdout


def test_a_base_that_is_neither_a_plan_nor_a_revision_is_a_usage_error():
    done = plan("--stack", "prod", "--base", "no-such-ref-anywhere")
    assert (done.returncode, done.stderr.strip()) == (
        2,
        "BASE=no-such-ref-anywhere: not a saved plan (*.json) nor a git revision",
    )


def test_the_json_carries_the_same_diff_as_the_text(stack_pair, tmp_path):
    saved, out = tmp_path / "base.json", tmp_path / "plan.json"
    stack = stack_pair()
    assert plan("--stack", stack, "--json", str(saved)).returncode == 0
    aws = {**stack_config("prod")["kumomta:aws"], "mtaInstanceType": "c6i.2xlarge"}
    stack_pair(**{"kumomta:aws": aws})
    done = plan("--stack", stack, "--base", str(saved), "--json", str(out))
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    (step,) = document["diff"]["steps"]
    assert step["name"] == "mta-instance" and step["op"] == "update"
    assert step["changes"][0] | {"note": None} == {
        "path": "instanceType",
        "kind": "update",
        "old": "c6i.xlarge",
        "new": "c6i.2xlarge",
        "note": None,
    }
    same = len(records()) - 1
    assert document["diff"]["summary"] == {"create": 0, "update": 1, "delete": 0, "replace": 0, "same": same}
    assert f"Resources: ~ 1 to update, {same} unchanged" in done.stdout
    assert document["exitCode"] == 0


def test_a_fleet_compared_with_itself_is_unchanged():
    fleet = {"mtaHosts": [f"mta{i}" for i in range(10)], "proxyHosts": [f"proxy{i}" for i in range(10)]}
    head = records(**fleet)
    diff = diffs.compare(head, records(**fleet), "main")
    assert diff.count("same") == len(head) > 150


def test_the_first_run_says_what_it_installs_and_how_long_it_takes(tmp_path):
    # `make -n` prints the recipe a fresh machine would run, echo included, without running it.
    dry = subprocess.run(
        ["make", "-n", "plan", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "First run: creating" in dry.stdout and "about 430 MB; a minute or two" in dry.stdout


@pytest.fixture
def repo(tmp_path):
    """A copy of the project as a one-commit git repository, run with its own tools."""
    copy = tmp_path / "repo"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file() and not name.startswith(("tests/", "Pulumi.test")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_bytes((ROOT / name).read_bytes())

    def git(*args: str) -> None:
        identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run(["git", *identity, *args], cwd=copy, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "base")

    def plan_in_repo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(ROOT / ".venv" / "bin" / "python"), "-m", "tools.plan", *args],
            cwd=copy,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    return copy, git, plan_in_repo


def _bigger_mta(stack_file):
    stack_file.write_text(stack_file.read_text().replace("mtaInstanceType: c6i.xlarge", "mtaInstanceType: c6i.2xlarge"))


def test_the_base_revision_is_planned_by_its_own_tools_when_they_can(repo):
    copy, _, plan_in_repo = repo
    _bigger_mta(copy / "Pulumi.prod.yaml")
    done = plan_in_repo("--stack", "prod")  # the default: the merge base with main, which is HEAD here
    assert done.returncode == 0, done.stderr
    assert "Changes against main (merge base " in done.stdout and "this checkout's tools" not in done.stdout
    assert '      ~ instanceType: "c6i.xlarge" => "c6i.2xlarge"' in done.stdout
    assert f"Resources: ~ 1 to update, {len(records()) - 1} unchanged" in done.stdout


def test_an_older_base_is_planned_by_this_checkouts_tools(repo):
    copy, git, plan_in_repo = repo
    plan_py = copy / "tools" / "plan.py"
    current = plan_py.read_text()
    plan_py.write_text('"""An older tool: it cannot write a snapshot."""\nraise SystemExit(2)\n')
    git("commit", "-q", "-am", "an older plan tool")
    plan_py.write_text(current)
    _bigger_mta(copy / "Pulumi.prod.yaml")
    done = plan_in_repo("--stack", "prod", "--base", "HEAD")
    assert done.returncode == 0, done.stderr
    assert "was planned with this checkout's tools (its own cannot write a snapshot)" in done.stdout
    assert f"Resources: ~ 1 to update, {len(records()) - 1} unchanged" in done.stdout
