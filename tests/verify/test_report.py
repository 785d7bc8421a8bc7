"""The verify exit code: a failure fails the run, and so does a run that verified nothing."""

from tools.verify.checks import Result, Status
from tools.verify.report import EXIT_FAILED, EXIT_OK, as_json, exit_code


def row(status: Status) -> Result:
    return Result("probes", f"a {status} check", status, "because")


def test_a_pass_beside_skips_passes():
    assert exit_code([row(Status.PASS), row(Status.SKIPPED)]) == EXIT_OK


def test_nothing_verified_is_not_a_pass():
    assert exit_code([row(Status.SKIPPED), row(Status.SKIPPED)]) == EXIT_FAILED
    assert exit_code([]) == EXIT_FAILED
    assert as_json("prod", [row(Status.SKIPPED)])["ok"] is False


def test_a_failure_fails_whatever_else_passed():
    assert exit_code([row(Status.PASS), row(Status.FAIL)]) == EXIT_FAILED
