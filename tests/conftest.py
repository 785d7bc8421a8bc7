"""Skipped tests are named in the summary, not only under `pytest -rs`.

A test skips when this machine lacks a tool or a privilege that `.ci/run` provides. That must be
visible in `make test`'s last lines; with KUMOMTA_FAIL_ON_SKIP=1 (as `.ci/run` sets it) a skip fails
the run, because there it means the CI machine lost a package it was meant to install.
"""

import os
from collections import Counter

import pytest


def pytest_terminal_summary(terminalreporter):
    reasons = Counter(_reason(report) for report in terminalreporter.stats.get("skipped", []))
    if not reasons:
        return
    total = sum(reasons.values())
    terminalreporter.section(f"{total} tests skipped: what this machine lacks", sep="-", yellow=True, bold=True)
    for reason, count in reasons.most_common():
        terminalreporter.line(f"{count:4d}  {reason}")
    if os.environ.get("KUMOMTA_FAIL_ON_SKIP") == "1":
        terminalreporter.line("KUMOMTA_FAIL_ON_SKIP=1: a skip fails this run (.ci/run installs everything).", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    skipped = session.config.pluginmanager.get_plugin("terminalreporter").stats.get("skipped", [])
    if skipped and os.environ.get("KUMOMTA_FAIL_ON_SKIP") == "1" and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2].removeprefix("Skipped: ") if isinstance(longrepr, tuple) else str(longrepr)
