"""Secret files on a running host (issue 15): `make verify` reads, on each host, the modes and owners of the
secret files, every file others may read that holds the token or a private key, and cloud-init's copies of the
user data. Here the real audit script runs over a stand-in `ssh` against a tree made to look like a host; in
tests/lab against the lab's hosts, whose files kumomta-apply wrote.

What must hold comes from the README ("Secrets"): the bearer map is root's, each DKIM key kumod's, both 0600;
nobody else may write to their directories; Hetzner's user data carries only the host's own SSH key.
"""

import base64
import gzip
import json
import os
import subprocess

import pytest

from components.bootstrap import nginx
from tests.bootstrap.conftest import TOKEN
from tests.verify import stacks
from tests.verify.test_inside_ssh import fake_ssh
from tools.verify import secrets
from tools.verify.checks import Status
from tools.verify.remote import Ssh

OUTPUTS = stacks.outputs(
    mta=("mta", "192.0.2.10", "10.43.1.10", "101"), proxy=("proxy", "192.0.2.20", "10.43.2.10", "102")
)
RSA = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow==\n-----END RSA PRIVATE KEY-----\n"
HOST_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n"


class Tree:
    """A host's directories under tmp_path, with the audit pointed at them."""

    def __init__(self, tmp_path, monkeypatch):
        self.root = tmp_path / "host"
        self.secrets, self.dkim = self.root / "nginx-secrets", self.root / "dkim"
        self.etc, self.cloud = self.root / "etc", self.root / "cloud"
        for d in (self.secrets, self.dkim, self.etc, self.cloud):
            d.mkdir(parents=True, mode=0o700)
        # This machine has no kumod user; its files here are root's like everything the test makes.
        monkeypatch.setattr(secrets, "OWNERS", {str(self.secrets): "root", str(self.dkim): "root"})
        monkeypatch.setattr(secrets, "SEARCHED", (str(self.root),))
        monkeypatch.setattr(secrets, "OWN", (f"{self.etc}/",))
        monkeypatch.setattr(secrets, "CLOUD_INIT", str(self.cloud))
        monkeypatch.setattr(secrets, "TOKEN_MAP", str(self.secrets / "bearer.map"))

    def write(self, path, text: str | bytes, mode: int = 0o600):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        os.chmod(path, mode)
        return path

    def healthy_mta(self):
        self.write(self.secrets / "bearer.map", nginx.token_map_line(TOKEN) + "\n")
        self.write(self.dkim / "example.com" / "s1.key", RSA)
        os.chmod(self.dkim / "example.com", 0o755)  # made by kumomta-apply: others may enter, not write
        self.write(self.etc / "nginx.conf", "server {}\n", 0o644)
        self.write(self.cloud / "instance" / "user-data.txt", gzip.compress(b"#cloud-config\n" + HOST_KEY.encode()))


def rows(tmp_path, stack_name="prod-hcloud") -> dict[str, object]:
    stack = stacks.stack(OUTPUTS, stack_name, adminCidrs=["192.0.2.0/29"])
    (task,) = secrets.tasks(stack, lambda: Ssh("root", 10, str(fake_ssh(tmp_path))))
    return {r.check: r for r in task.run()}


@pytest.fixture
def tree(tmp_path, monkeypatch):
    return Tree(tmp_path, monkeypatch)


def test_a_host_as_the_readme_says_passes_every_row(tmp_path, tree):
    tree.healthy_mta()
    found = {k: r for k, r in rows(tmp_path).items() if k.startswith("mta:")}
    assert {r.status for r in found.values()} == {Status.PASS}, found
    assert found["mta: secret files are their service's alone"].reason == "2 file(s), each 0600 and its service's"


def test_a_key_others_can_read_fails_with_its_path_mode_and_kind(tmp_path, tree):
    tree.healthy_mta()
    key = tree.write(tree.dkim / "example.com" / "s1.key", RSA, 0o644)
    files = rows(tmp_path)["mta: secret files are their service's alone"]
    assert files.status == Status.FAIL and f"{key} 0o644" in files.reason


def test_a_copy_of_a_key_others_can_read_is_found_anywhere_and_any_key_where_the_stack_writes(tmp_path, tree):
    tree.healthy_mta()
    copy = tree.write(tree.root / "backup" / "s1.bak", RSA, 0o640)
    foreign = tree.write(tree.etc / "nginx" / "other.key", "-----BEGIN EC PRIVATE KEY-----\nMHc=\n", 0o644)
    # A distribution's own test keys outside the stack's directories are not this host's secrets.
    tree.write(tree.root / "go" / "testdata" / "example-key.pem", "-----BEGIN EC PRIVATE KEY-----\nMHd=\n", 0o644)
    readable = rows(tmp_path)["mta: no file others can read holds the token or a key"]
    assert readable.status == Status.FAIL
    assert readable.reason.split("; ") == sorted(
        [f"{copy} (0o640): the key {tree.dkim / 'example.com' / 's1.key'}", f"{foreign} (0o644): a private key (EC)"]
    )


def test_the_token_copied_anywhere_others_can_read_is_found_though_the_host_reads_it_from_its_own_map(tmp_path, tree):
    tree.healthy_mta()
    env = tree.write(tree.etc / "kumoproxy" / "listen.env", f"TOKEN={TOKEN}\n", 0o644)
    readable = rows(tmp_path)["mta: no file others can read holds the token or a key"]
    assert (readable.status, readable.reason) == (Status.FAIL, f"{env} (0o644): the injection token")


def test_a_directory_others_may_write_to_fails(tmp_path, tree):
    tree.healthy_mta()
    os.chmod(tree.dkim / "example.com", 0o777)
    files = rows(tmp_path)["mta: secret files are their service's alone"]
    assert files.status == Status.FAIL and "(others may write)" in files.reason


def test_cloud_inits_copy_may_hold_the_host_key_but_never_the_token_or_another_key(tmp_path, tree):
    tree.healthy_mta()
    user_data = "#cloud-config\n" + HOST_KEY + nginx.token_map_line(TOKEN) + RSA
    copy = tree.write(tree.cloud / "instances" / "i-1" / "user-data.txt.i", user_data)
    row = rows(tmp_path)["mta: cloud-init's copy of the user data holds no secret"]
    assert row.status == Status.FAIL
    key = tree.dkim / "example.com" / "s1.key"
    assert row.reason == f"{copy}: a private key (RSA); {copy}: the injection token; {copy}: the key {key}"


def test_a_proxy_holds_no_secret_files_and_an_mta_without_its_map_fails(tmp_path, tree):
    tree.write(tree.dkim / "example.com" / "s1.key", RSA)
    found = rows(tmp_path)
    assert found["mta: secret files are their service's alone"].reason.endswith("no readable bearer map at "
                                                                                f"{tree.secrets / 'bearer.map'}")  # fmt: skip
    proxy = found["proxy: secret files are their service's alone"]
    assert proxy.status == Status.FAIL and "a proxy holds secret files" in proxy.reason


def test_the_audit_runs_with_the_python_a_host_has_and_sends_no_secret(tmp_path, tree):
    """Ubuntu 22.04's python3 runs it (kumomta-apply needs the same); the command carries paths, never the token
    (SSM keeps every command's text in its history)."""
    tree.healthy_mta()
    script = secrets.script()
    assert TOKEN not in script and base64.b64encode(TOKEN.encode()).decode() not in script
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(done.stdout)
    assert report["token"] is True and len(report["files"]) == 3  # the map, a domain directory and its key
