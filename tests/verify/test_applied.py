"""Applied = desired: `make verify` reads each host's applied.json and failed.json and compares them with the
stack output `hosts.<label>.configVersion`. Over SSH (a stand-in `ssh` running the real script against a
state directory here) and over SSM (botocore's Stubber); against the lab's hosts in tests/lab.

What the host writes is kumomta-apply's own record (components/bootstrap/templates/sbin/kumomta-apply,
`_record`): applied.json {"version", "host", "at"}, failed.json {"version", "error", "at"}.
"""

import json

from botocore.stub import ANY

from tests.verify import stacks
from tests.verify.test_inside_ssh import fake_ssh
from tools.verify import applied
from tools.verify.checks import Status
from tools.verify.remote import Ssh, Ssm

COMMAND = "7f3c1a2e-5b4d-4e6f-8a9b-0c1d2e3f4a5b"
OUTPUTS = stacks.outputs(
    mta=("mta", "192.0.2.10", "10.43.1.10", "101"),
    proxy=("proxy", "192.0.2.20", "10.43.2.10", "102"),
    proxy2=("proxy", "192.0.2.21", "10.43.2.11", "103"),
)


def outputs(**versions: str | None) -> dict:
    out = json.loads(json.dumps(OUTPUTS))
    for label, version in versions.items():
        if version is not None:
            out["hosts"][label]["configVersion"] = version
    return out


def rows_over_ssh(tmp_path, monkeypatch, records: dict[str, dict], versions: dict) -> dict:
    """Every host reads the same state directory here; `records` are its files."""
    state = tmp_path / "state"
    state.mkdir()
    for name, record in records.items():
        (state / f"{name}.json").write_text(json.dumps(record) + "\n")
    monkeypatch.setitem(applied.STATE_DIR, "hcloud", str(state))
    stack = stacks.stack(outputs(**versions), "prod-hcloud", adminCidrs=["192.0.2.0/29"])
    (task,) = applied.tasks(stack, lambda: Ssh("root", 2, str(fake_ssh(tmp_path))))
    return {r.check.split(":")[0]: r for r in task.run()}


def test_a_host_that_runs_the_wanted_version_passes_and_one_that_refused_it_fails_with_the_reason(
    tmp_path, monkeypatch
):
    refused = {"version": "bbbb", "error": "refused by nginx: `nginx -t -q` failed: unknown directive", "at": 2}
    records = {"applied": {"version": "aaaa", "host": "mta", "at": 1}, "failed": refused}
    rows = rows_over_ssh(tmp_path, monkeypatch, records, {"mta": "aaaa", "proxy": "bbbb", "proxy2": "cccc"})

    assert (rows["mta"].status, rows["mta"].reason) == (
        Status.PASS,
        "runs aaaa; an earlier bbbb was refused: refused by nginx: `nginx -t -q` failed: unknown directive",
    )
    assert rows["proxy"].status == Status.FAIL
    assert rows["proxy"].reason == (
        "runs aaaa, the stack wants bbbb; the host refused it: refused by nginx: `nginx -t -q` failed: unknown directive"
    )
    assert rows["proxy2"].status == Status.FAIL
    assert rows["proxy2"].reason.startswith("runs aaaa, the stack wants cccc; not applied yet; last refused bbbb")


def test_a_host_that_never_applied_anything_says_so_and_how_it_would_arrive(tmp_path, monkeypatch):
    rows = rows_over_ssh(tmp_path, monkeypatch, {}, {"mta": "aaaa", "proxy": "bbbb", "proxy2": None})
    assert rows["mta"].status == Status.FAIL
    assert rows["mta"].reason == (
        "runs nothing yet (no applied.json), the stack wants aaaa; not applied yet "
        "(AWS: the host polls every 30 s; Hetzner: pulumi up pushes it)"
    )
    # A stack deployed before the day-2 channel exports no version: nothing to compare, and the row says so.
    assert rows["proxy2"].status == Status.SKIPPED and "no configVersion" in rows["proxy2"].reason


def test_ssh_that_cannot_connect_fails_each_host_with_the_admin_cidrs_hint(tmp_path):
    stack = stacks.stack(outputs(mta="a", proxy="b", proxy2="c"), "prod-hcloud", adminCidrs=["192.0.2.0/29"])
    (task,) = applied.tasks(stack, lambda: Ssh("root", 2, str(fake_ssh(tmp_path, exit_code=255))))
    rows = task.run()
    assert len(rows) == 3 and {r.status for r in rows} == {Status.FAIL}
    assert all(r.reason.endswith("(is this machine in adminCidrs?)") for r in rows)


def test_over_ssm_one_command_reads_every_hosts_records_in_the_aws_state_directory(ssm):
    client, stubber, sent = ssm
    ids = ["101", "102", "103"]
    stubber.add_response("send_command", {"Command": {"CommandId": COMMAND}}, {"InstanceIds": ids,
                         "DocumentName": "AWS-RunShellScript", "Comment": ANY, "TimeoutSeconds": ANY, "Parameters": ANY})  # fmt: skip
    out = {
        "101": 'applied\t{"version": "v2", "host": "mta", "at": 5}\nfailed\t-\n',
        "102": 'applied\t{"version": "v1", "host": "proxy", "at": 5}\nfailed\t-\n',
        "103": "applied\tnot json\nfailed\t-\n",
    }
    for instance in ids:
        answer = {"CommandId": COMMAND, "InstanceId": instance, "Status": "Success", "ResponseCode": 0,
                  "StandardOutputContent": out[instance], "StandardErrorContent": ""}  # fmt: skip
        stubber.add_response("get_command_invocation", answer, {"CommandId": COMMAND, "InstanceId": instance})
    stack = stacks.stack(outputs(mta="v2", proxy="v2", proxy2="v2"))
    transport = Ssm(client, timeout=5, grace=10, poll=0, sleep=lambda _: None)
    (task,) = applied.tasks(stack, lambda: transport)
    rows = {r.check.split(":")[0]: r for r in task.run()}

    assert rows["mta"].status == Status.PASS and rows["mta"].reason == "runs v2"
    assert rows["proxy"].reason.startswith("runs v1, the stack wants v2; not applied yet")
    assert rows["proxy2"].status == Status.FAIL and rows["proxy2"].reason.startswith("runs nothing yet")
    (command,) = sent[0]["Parameters"]["commands"]
    assert "s=/run/kumomta-infra" in command  # AWS keeps the record on tmpfs (components/bootstrap/layout.py)
