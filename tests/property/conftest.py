"""The property test's long-lived tools, and its counts in the summary of the run."""

import collections

import pytest

from tests.property import checks

COUNTS: collections.Counter = collections.Counter()


@pytest.fixture(scope="module")
def tools():
    """cloud-init's interpreter and the policy pack, started once for the module."""
    missing = checks.missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (apt-get install what .ci/run lists)")
    with checks.Tools() as started:
        yield started


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
