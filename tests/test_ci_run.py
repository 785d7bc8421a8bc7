""".ci/run works as root (a container) and as a user with sudo (a GitHub-hosted runner), with stand-ins
for apt-get, sudo and make that only record what they were asked to do."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_ci(tmp_path: Path, uid: int, has_light: bool) -> list[str]:
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    stubs = {
        "id": f'[ "$1" = -u ] && echo {uid}',
        "sudo": f'echo "sudo $*" >> {log}; exec "$@"',
        "apt-get": f'echo "apt-get $*" >> {log}',
        "apt-cache": "exit 0" if has_light else "exit 100",
        "make": f'echo "make $*" >> {log}',
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    # No Go on this PATH, as on a fresh machine.
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    subprocess.run([str(ROOT / ".ci" / "run")], env=env, check=True, capture_output=True, timeout=60)
    return log.read_text().splitlines()


@pytest.mark.skipif(Path("/usr/bin/go").exists(), reason="a Go in /usr/bin would be found; the test needs none")
def test_as_a_user_every_apt_get_goes_through_sudo_and_ubuntu_gets_plain_nginx(tmp_path):
    log = run_ci(tmp_path, uid=1001, has_light=False)
    apt = [line for line in log if "apt-get" in line and not line.startswith("sudo")]
    sudo = [line for line in log if line.startswith("sudo")]
    assert len(sudo) == len(apt) == 3  # update, the tools, Go
    assert sudo[0] == "sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq"
    assert " nginx cloud-init nftables " in sudo[1] and "golang-go" in sudo[2]
    assert log[-1] == "make test"


@pytest.mark.skipif(Path("/usr/bin/go").exists(), reason="a Go in /usr/bin would be found; the test needs none")
def test_as_root_there_is_no_sudo_and_debian_gets_nginx_light(tmp_path):
    log = run_ci(tmp_path, uid=0, has_light=True)
    assert not any(line.startswith("sudo") for line in log)
    assert any(" nginx-light cloud-init " in line for line in log)
    assert log[-1] == "make test"
