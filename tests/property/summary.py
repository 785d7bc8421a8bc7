"""The property test's counts in the summary of the run, also when pytest-xdist runs it in a worker process.

A plugin (tests/conftest.py names it) rather than a conftest hook: under xdist the process that prints the
summary never collects tests/property, so it never reads that directory's conftest.
"""

import collections

import pytest

from tests.property import checks

COUNTS: collections.Counter = collections.Counter()


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the counts over
        session.config.workeroutput["property_counts"] = dict(COUNTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    COUNTS.update(getattr(node, "workeroutput", {}).get("property_counts", {}))


def pytest_terminal_summary(terminalreporter):
    if not COUNTS["tried"]:
        return
    c = COUNTS
    terminalreporter.section("stack config property (tests/property)", sep="-")
    terminalreporter.line(
        f"{c['tried']} configs tried: {c['refused']} refused cleanly, {c['accepted']} accepted and checked by the "
        f"tools, {c['tracebacks']} tracebacks, {c['broken']} other breaks of the invariant; exposures tried "
        f"{c['exposures']}, caught {c['caught']}"
    )
    files = ", ".join(f"{c[f'files {tool}']} through {tool}" for tool in checks.TOOL_NAMES)
    terminalreporter.line(f"files: {files}; stack files read as make plan reads them: {c['stack files']}")
