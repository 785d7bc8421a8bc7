"""A test skipped for a missing tool is named in `make test`'s summary, and fails CI, where nothing may be missing."""

import os
import subprocess
import sys

from tools.mockrun import ROOT

SKIPPING = "import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('frobnicate is not installed')\n"


def _pytest(tmp_path, **env):
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, **env}, timeout=120,
    )  # fmt: skip


def test_the_summary_names_what_is_missing(tmp_path):
    done = _pytest(tmp_path, KUMOMTA_FAIL_ON_SKIP="0")
    assert done.returncode == 0
    assert "1 tests skipped: what this machine lacks" in done.stdout
    assert "   1  frobnicate is not installed" in done.stdout


def test_ci_fails_on_a_skip(tmp_path):
    done = _pytest(tmp_path, KUMOMTA_FAIL_ON_SKIP="1")
    assert done.returncode == 1
    assert "a skip fails this run" in done.stdout


def test_an_optional_tool_may_be_missing_even_in_ci(tmp_path):
    """The Pulumi CLI can't be downloaded where `.ci/run` runs; its tests are marked optional."""
    (tmp_path / "test_skipping.py").write_text(
        "import pytest\n\n@pytest.mark.optional\ndef test_needs_the_cli():\n    pytest.skip('no pulumi CLI')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ, "KUMOMTA_FAIL_ON_SKIP": "1"},
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert "   1  no pulumi CLI" in done.stdout and "a skip fails this run" not in done.stdout
