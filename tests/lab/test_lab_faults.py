"""The lab can fail: each planted fault makes its named check fail, and undoing it makes it pass again."""

import pytest

from tests.lab.conftest import needs_lab, ran
from tools.lab import checks, faults

pytestmark = needs_lab


@pytest.fixture(scope="module")
def lab():
    yield from ran("prod", run=None)


@pytest.mark.parametrize("fault", faults.FAULTS, ids=lambda f: f.name)
def test_a_planted_fault_fails_its_named_check(lab, fault):
    undo = fault.plant(lab.lab)
    try:
        rows = checks.run_all(lab.lab, set(fault.groups))
    finally:
        undo()
    failed = {r.check for r in rows if r.status.value == "fail"}
    assert set(fault.fails(lab.lab)) <= failed
    again = checks.run_all(lab.lab, set(fault.groups))
    assert [r.check for r in again if r.status.value == "fail"] == []
