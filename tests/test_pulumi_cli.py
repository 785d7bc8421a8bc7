"""With the real Pulumi CLI (when one is installed): the README's commands make a stack file that
`make plan` reads, secrets included, and `pulumi preview --policy-pack policies` loads the pack.

Everything runs in a copy of the project with a local backend (`file://`), so nothing here touches the
project's stack files or a Pulumi Cloud account.
"""

import os
import shutil
import subprocess

import pytest

from tools.mockrun import ROOT, stack_config

PULUMI = shutil.which("pulumi")
pytestmark = [
    pytest.mark.optional,
    pytest.mark.skipif(PULUMI is None, reason="the Pulumi CLI is not installed (test.yml installs it in CI)"),
]
PASSPHRASE = "correct horse battery staple"
TOKEN = "Tok3n-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def project(tmp_path):
    """A copy of the project, its virtualenvs linked, and a CLI environment of its own."""
    copy = tmp_path / "project"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file() and not name.startswith("tests/"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    (copy / "policies" / "venv").symlink_to(ROOT / ".venv")  # make installs the pack's requirements there too
    (tmp_path / "state").mkdir()
    env = {
        **os.environ,
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "1",
    }

    def pulumi(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        command = [PULUMI, *args, "--non-interactive"]
        return subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout, check=False)

    return copy, pulumi


def test_the_readme_commands_make_a_stack_file_make_plan_reads(project, monkeypatch):
    copy, pulumi = project
    # README "Deploying": on a new backend the stack has to be created; `stack select` alone fails.
    assert "no stack named 'prod' found" in pulumi("stack", "select", "prod").stderr
    assert pulumi("stack", "select", "--create", "prod").returncode == 0
    assert pulumi("config", "set", "--secret", "kumomta:injectToken", TOKEN).returncode == 0
    assert pulumi("config", "set", "--path", "kumomta:adminCidrs[0]", "198.51.100.7/32").returncode == 0
    text = (copy / "Pulumi.prod.yaml").read_text()
    assert "encryptionsalt: v1:" in text and TOKEN not in text

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
    values = stack_config("prod", root=copy)
    assert values["kumomta:injectToken"] == TOKEN and values["kumomta:adminCidrs"] == ["198.51.100.7/32"]


def test_preview_loads_the_policy_pack_as_users_will(project):
    _, pulumi = project
    assert pulumi("stack", "init", "prod").returncode == 0
    done = pulumi("preview", "--diff", "--policy-pack", "policies", "--color", "never", timeout=600)
    output = done.stdout + done.stderr
    # The engine started the pack from policies/ with its own virtualenv and asked it for its name and
    # version. Where the provider plugins can't be downloaded (no route to get.pulumi.com) or there are no
    # cloud credentials, the preview then fails before any resource reaches the pack.
    assert "kumoguard|local|policies" in output, output[-3000:]
