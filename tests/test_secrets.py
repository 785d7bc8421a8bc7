"""Secrets in stack files: `make plan` decrypts them as Pulumi's passphrase provider does, says when it
can't, and never prints them.

Sources: pulumi/pulumi v3.274.1 pkg/secrets/passphrase/manager.go (encryptionsalt `v1:<salt>:<"pulumi"
encrypted>`) and manager_test.go (the test vector below), sdk/go/common/resource/config/crypt.go
(PBKDF2-SHA256, 1,000,000 iterations, AES-256-GCM, `v1:<nonce>:<ciphertext>`).
"""

import json
import shutil
from pathlib import Path

import pytest

from components.bootstrap import nginx
from tests.stacks import plan
from tools import diff as diffs
from tools.mockrun import ROOT, StackFileError, run_program, secure_keys, stack_config
from tools.passphrase import Decrypter, PassphraseError

# manager_test.go: this state opens with "password" and refuses "password123".
GO_TEST_STATE = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="

# A stack file the real Pulumi CLI wrote (see its header), and what it was given.
CLI_STACK = Path(__file__).parent / "data" / "pulumi-cli"
CLI_PASSPHRASE = "correct horse battery staple"
CLI_TOKEN = "Tok3n-0123456789abcdefghijklmnopqrstuvwxyz"


def test_pulumis_own_test_vector_opens_with_the_right_passphrase_only():
    Decrypter("password", GO_TEST_STATE)
    with pytest.raises(PassphraseError, match="incorrect passphrase"):
        Decrypter("password123", GO_TEST_STATE)


def test_the_cli_written_stack_file_decrypts_to_what_was_set(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", CLI_PASSPHRASE)
    values = stack_config("prod", root=CLI_STACK)
    assert values["kumomta:injectToken"] == CLI_TOKEN
    # `config set` wrote these back as strings; the engine hands them to the program the same way.
    assert values["kumomta:proxyMetricsPort"] == "9101" and values["kumomta:adminCidrs"] == ["198.51.100.7/32"]
    run = run_program("prod", values)
    # The planned token is the configured one: the bearer map that the MTAs fetch holds it.
    assert run.by_name("bearer-map").inputs["value"]["value"] == nginx.token_map_line(CLI_TOKEN)


def test_the_passphrase_file_works_like_the_cli(monkeypatch, tmp_path):
    # manager.go readPassphrase: PULUMI_CONFIG_PASSPHRASE_FILE, trimmed.
    (tmp_path / "phrase").write_text(CLI_PASSPHRASE + "\n")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", str(tmp_path / "phrase"))
    assert stack_config("prod", root=CLI_STACK)["kumomta:injectToken"] == CLI_TOKEN


def test_without_a_passphrase_the_secret_is_left_out_and_named(monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    assert "kumomta:injectToken" not in stack_config("prod", root=CLI_STACK)
    assert secure_keys("prod", root=CLI_STACK) == ["kumomta:injectToken"]


def test_a_wrong_passphrase_is_a_config_error(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "wrong")
    with pytest.raises(StackFileError, match=r"Pulumi\.prod\.yaml: incorrect passphrase"):
        stack_config("prod", root=CLI_STACK)


@pytest.fixture
def cli_stack():
    """The CLI-written file as a stack of this project, removed afterwards."""
    path = ROOT / "Pulumi.test-cli-secret.yaml"
    shutil.copy(CLI_STACK / "Pulumi.prod.yaml", path)
    yield "test-cli-secret"
    path.unlink(missing_ok=True)


def test_the_plan_says_when_it_uses_a_stand_in_and_never_prints_the_secret(cli_stack, monkeypatch, tmp_path):
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    without = plan("--stack", cli_stack)
    assert without.returncode == 0, without.stderr
    assert (
        f"note: kumomta:injectToken in Pulumi.{cli_stack}.yaml is encrypted and PULUMI_CONFIG_PASSPHRASE is not "
        "set: the plan uses a stand-in value"
    ) in without.stdout

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", CLI_PASSPHRASE)
    out = tmp_path / "plan.json"
    with_secret = plan("--stack", cli_stack, "--json", str(out))
    assert with_secret.returncode == 0, with_secret.stderr
    assert "stand-in" not in with_secret.stdout
    assert CLI_TOKEN not in with_secret.stdout + with_secret.stderr + out.read_text()
    (parameter,) = [r for r in json.loads(out.read_text())["resources"] if r["name"] == "bearer-map"]
    assert parameter["inputs"]["value"] == diffs.SECRET


def test_a_changed_secret_shows_as_changed_but_not_its_value(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", CLI_PASSPHRASE)
    values = stack_config("prod", root=CLI_STACK)
    other = {**values, "kumomta:injectToken": "another-token-0123456789abcdefghijklmnop"}
    salt = "one invocation"
    diff = diffs.compare(
        diffs.records(run_program("prod", values), salt), diffs.records(run_program("prod", other), salt), "base"
    )
    text = "\n".join(diffs.render(diff) + diff.hosts) + json.dumps(diffs.as_json(diff))
    assert "  ~ bearer-map  (aws:ssm/parameter:Parameter)  update" in text
    assert '      ~ value: "[secret]" => "[secret]"' in text
    assert "mta: /etc/nginx/kumomta-secrets/bearer.map changed; the running host applies it within 30 s" in text
    assert CLI_TOKEN not in text and "another-token" not in text
