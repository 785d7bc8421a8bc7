"""What every test module may use: a moto server standing in for AWS, and skips named in the summary.

A test skips when this machine lacks a tool or a privilege that `.ci/run` provides. That must be
visible in `make test`'s last lines; with KUMOMTA_FAIL_ON_SKIP=1 (as `.ci/run` sets it) a skip fails
the run, because there it means the CI machine lost a package it was meant to install.
"""

import logging
import os
from collections import Counter

import pytest
from moto.server import ThreadedMotoServer

pytest_plugins = ["tests.property.summary"]


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto server on loopback for the session (a fresh backend costs a second); tests keep apart by name."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.hookimpl(trylast=True)  # after pytest has grouped the tests by their parametrized fixtures
def pytest_collection_modifyitems(items):
    """The lab's tests first: under pytest-xdist they are one unit of work (below), the longest of the run."""
    items.sort(key=lambda item: not _in_lab(item.nodeid))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` spreads tests over processes (pytest-xdist), one test at a time, except the lab's: they share
    session-scoped labs and the machine's network namespaces, so one process runs them all, in order.
    (`--dist loadgroup` would do this by mark, but xdist 3.8 renames node IDs in a way pytest 9.2 ignores.)"""
    from xdist.scheduler import LoadScopeScheduling

    class LabTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "lab" if _in_lab(nodeid) else nodeid

    return LabTogether(config, log)


def _in_lab(nodeid: str) -> bool:
    return nodeid.startswith("tests/lab/")


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = Counter(_reason(report) for report in skipped)
    if not reasons:
        return
    total = sum(reasons.values())
    terminalreporter.section(f"{total} tests skipped: what this machine lacks", sep="-", yellow=True, bold=True)
    for reason, count in reasons.most_common():
        terminalreporter.line(f"{count:4d}  {reason}")
    if os.environ.get("KUMOMTA_FAIL_ON_SKIP") == "1" and _missing(skipped):
        terminalreporter.line("KUMOMTA_FAIL_ON_SKIP=1: a skip fails this run (.ci/run installs everything).", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    skipped = session.config.pluginmanager.get_plugin("terminalreporter").stats.get("skipped", [])
    if _missing(skipped) and os.environ.get("KUMOMTA_FAIL_ON_SKIP") == "1" and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _missing(skipped: list) -> list:
    """Skips `.ci/run` should have prevented: all but those of tests marked `optional` (a tool no registry here
    serves, such as the Pulumi CLI)."""
    return [report for report in skipped if "optional" not in report.keywords]


def _reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2].removeprefix("Skipped: ") if isinstance(longrepr, tuple) else str(longrepr)
