"""The property test's long-lived tools."""

import pytest

from tests.property import checks


@pytest.fixture(scope="module")
def tools():
    """cloud-init's interpreter and the policy pack, started once for the module."""
    missing = checks.missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (apt-get install what .ci/run lists)")
    with checks.Tools() as started:
        yield started
