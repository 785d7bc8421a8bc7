"""Inside checks on AWS: the SSM Run Command flow against botocore's Stubber, request shapes asserted."""

from botocore.stub import ANY

from tests.verify import stacks
from tools.verify import inside
from tools.verify.checks import Status
from tools.verify.remote import Ssm

COMMAND = "7f3c1a2e-5b4d-4e6f-8a9b-0c1d2e3f4a5b"
OUTPUTS = stacks.outputs(
    mta=("mta", "192.0.2.10", "10.42.1.10", "i-0mta"),
    proxy=("proxy", "192.0.2.20", "10.42.2.20", "i-0proxy"),
    proxy2=("proxy", "192.0.2.21", "10.42.2.21", "i-0proxy2"),
)


class Clock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def socks_rows(client, clock, **targets):
    stack = stacks.stack(OUTPUTS)
    transport = Ssm(client, timeout=5, grace=10, poll=1, clock=clock, sleep=clock.sleep)
    (task, mx, hook) = inside.tasks(stack, lambda: transport, 5, targets.get("mx"), targets.get("hook"))
    return {r.check: r for r in task.run()}, mx, hook


def invocation(status: str, stdout: str = "", stderr: str = "", code: int = 0) -> dict:
    return {
        "CommandId": COMMAND,
        "InstanceId": "i-0mta",
        "Status": status,
        "ResponseCode": code,
        "StandardOutputContent": stdout,
        "StandardErrorContent": stderr,
    }


def expect_send(stubber):
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND}},
        {
            "InstanceIds": ["i-0mta"],
            "DocumentName": "AWS-RunShellScript",
            "Comment": "kumomta-infra make verify",
            "TimeoutSeconds": 30,
            "Parameters": ANY,
        },
    )


POLL = {"CommandId": COMMAND, "InstanceId": "i-0mta"}


def test_one_command_per_check_kind_and_one_row_per_mta_and_proxy(ssm):
    client, stubber, sent = ssm
    expect_send(stubber)
    stubber.add_client_error("get_command_invocation", "InvocationDoesNotExist", expected_params=POLL)
    stubber.add_response("get_command_invocation", invocation("InProgress"), POLL)
    output = "ok\t10.42.2.20:5000\tconnected\nfail\t10.42.2.21:5000\tconnect: Connection refused\n"
    stubber.add_response("get_command_invocation", invocation("Success", output), POLL)
    clock = Clock()
    rows, mx, hook = socks_rows(client, clock)

    assert rows["mta -> proxy: 5000/tcp (SOCKS5) reachable"].status == Status.PASS
    refused = rows["mta -> proxy2: 5000/tcp (SOCKS5) reachable"]
    assert (refused.status, refused.reason) == (Status.FAIL, "10.42.2.21:5000: connect: Connection refused")
    (params,) = sent
    (command,) = params["Parameters"]["commands"]
    assert command.startswith("bash -c ")
    assert "tcp 10.42.2.20 5000 &" in command and "tcp 10.42.2.21 5000 &" in command
    assert params["Parameters"]["executionTimeout"] == ["10"]
    assert clock.sleeps == [1, 1]
    # Without a test MX or webhook URL those checks are skipped, saying what would enable them.
    assert {r.status for r in mx.run() + hook.run()} == {Status.SKIPPED}
    assert "kumomta:verify.testMx" in mx.run()[0].reason and "--test-mx" in mx.run()[0].reason


def test_a_failed_command_fails_every_row_of_that_host_with_the_hosts_error(ssm):
    client, stubber, _ = ssm
    expect_send(stubber)
    failed = invocation("Failed", stderr="bash: line 1: timeout: command not found\n", code=127)
    stubber.add_response("get_command_invocation", failed, POLL)
    rows, _, _ = socks_rows(client, Clock())
    assert [r.status for r in rows.values()] == [Status.FAIL, Status.FAIL]
    assert {r.reason for r in rows.values()} == {
        "SSM command Failed (exit 127): bash: line 1: timeout: command not found"
    }


def test_an_instance_ssm_does_not_manage_is_a_failed_row(ssm):
    client, stubber, _ = ssm
    stubber.add_client_error("send_command", "InvalidInstanceId", "Instances not in a valid state for account")
    rows, _, _ = socks_rows(client, Clock())
    assert {r.status for r in rows.values()} == {Status.FAIL}
    assert all(r.reason.startswith("SSM send_command failed: InvalidInstanceId") for r in rows.values())


def test_no_answer_within_the_timeout_cancels_the_command_and_fails(ssm):
    client, stubber, _ = ssm
    expect_send(stubber)
    for _ in range(16):  # 5 s per check + 10 s for SSM, polled each second
        stubber.add_response("get_command_invocation", invocation("InProgress"), POLL)
    stubber.add_response("cancel_command", {}, {"CommandId": COMMAND, "InstanceIds": ["i-0mta"]})
    clock = Clock()
    rows, _, _ = socks_rows(client, clock)
    assert {r.reason for r in rows.values()} == {"no result from SSM within 15s (last status InProgress)"}
    assert clock.now == 15


def test_a_script_that_printed_nothing_for_a_target_is_a_failure_not_a_pass(ssm):
    client, stubber, _ = ssm
    expect_send(stubber)
    stubber.add_response("get_command_invocation", invocation("Success", "ok\t10.42.2.20:5000\tconnected\n"), POLL)
    rows, _, _ = socks_rows(client, Clock())
    missing = rows["mta -> proxy2: 5000/tcp (SOCKS5) reachable"]
    assert missing.status == Status.FAIL and missing.reason.startswith(
        "the script printed no result for 10.42.2.21:5000"
    )
