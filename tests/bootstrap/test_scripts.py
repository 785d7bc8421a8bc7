"""The host scripts, run for real with fakes only for what this machine cannot have (AWS, certbot, metadata)."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from components.bootstrap import nginx, scripts
from tests.bootstrap.conftest import TOKEN, need
from tests.bootstrap.nginx_harness import install


def _fake(bin_dir: Path, name: str, body: str) -> None:
    """A stand-in command on PATH that logs its arguments to `calls` beside it."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{bin_dir}/calls"\n{body}\n')
    path.chmod(0o755)


def _run(script: Path, *args: str, fakes: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    path = f"{fakes}:{os.environ['PATH']}" if fakes else os.environ["PATH"]
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, check=False, env={**os.environ, "PATH": path, **env}
    )


@pytest.mark.parametrize("name", scripts.NAMES)
def test_scripts_are_clean_posix_sh(tmp_path, name):
    need("shellcheck")
    path = install(tmp_path, name)
    checked = subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout


def test_placeholder_certificate_is_made_once(tmp_path):
    need("openssl")
    script = install(tmp_path / "sbin", "kumomta-tls-placeholder")
    tls = tmp_path / "tls"
    assert _run(script, str(tls), "mta.example.com").returncode == 0
    first = (tls / "fullchain.pem").read_bytes()
    subject = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-in", str(tls / "fullchain.pem")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "mta.example.com" in subject.stdout
    assert oct((tls / "privkey.pem").stat().st_mode & 0o777) == "0o600"
    assert _run(script, str(tls), "mta.example.com").returncode == 0
    assert (tls / "fullchain.pem").read_bytes() == first


def test_deploy_hook_links_the_lineage_and_reloads_nginx(tmp_path):
    script = install(tmp_path / "sbin", "kumomta-cert-deploy")
    fakes = tmp_path / "bin"
    _fake(fakes, "nginx", "exit 0")
    _fake(fakes, "systemctl", "exit 0")
    lineage = tmp_path / "live" / "mta.example.com"
    lineage.mkdir(parents=True)
    tls = tmp_path / "tls"
    done = _run(script, str(tls), fakes=fakes, RENEWED_LINEAGE=str(lineage))
    assert done.returncode == 0, done.stderr
    assert os.readlink(tls / "fullchain.pem") == str(lineage / "fullchain.pem")
    assert os.readlink(tls / "privkey.pem") == str(lineage / "privkey.pem")
    assert (fakes / "calls").read_text().splitlines() == ["nginx -t -q", "systemctl reload nginx.service"]


def test_deploy_hook_never_reloads_a_config_nginx_rejects(tmp_path):
    script = install(tmp_path / "sbin", "kumomta-cert-deploy")
    fakes = tmp_path / "bin"
    _fake(fakes, "nginx", "exit 1")
    _fake(fakes, "systemctl", "exit 0")
    lineage = tmp_path / "live"
    lineage.mkdir()
    assert _run(script, str(tmp_path / "tls"), fakes=fakes, RENEWED_LINEAGE=str(lineage)).returncode != 0
    assert "systemctl" not in (fakes / "calls").read_text()


@pytest.mark.parametrize("token", [TOKEN, "a.b+c/d~e-f_" + "x" * 24 + "=="])
def test_token_from_ssm_becomes_the_nginx_map_line(tmp_path, token):
    script = install(tmp_path / "sbin", "kumomta-token")
    fakes = tmp_path / "bin"
    _fake(fakes, "aws", f"echo '{token}'")
    token_map = tmp_path / "bearer.map"
    done = _run(script, "eu-central-1", "/kumomta/prod/mta/inject-token", str(token_map), fakes=fakes)
    assert done.returncode == 0, done.stderr
    assert token_map.read_text() == nginx.token_map_line(token)
    assert oct(token_map.stat().st_mode & 0o777) == "0o600"
    call = (fakes / "calls").read_text().split()
    assert call[:3] == ["aws", "ssm", "get-parameter"]
    assert {"--with-decryption", "eu-central-1", "/kumomta/prod/mta/inject-token"} <= set(call)


@pytest.mark.parametrize(("aws", "reason"), [("exit 255", "could not read"), ('echo "bad token"', "cannot have")])
def test_token_failures_leave_the_map_as_it_was(tmp_path, aws, reason):
    script = install(tmp_path / "sbin", "kumomta-token")
    fakes = tmp_path / "bin"
    _fake(fakes, "aws", aws)
    token_map = tmp_path / "bearer.map"
    token_map.write_text("# placeholder\n")
    done = _run(script, "eu-central-1", "/p", str(token_map), fakes=fakes, KUMOMTA_TOKEN_ATTEMPTS="1")
    assert done.returncode == 1
    assert reason in done.stderr
    assert token_map.read_text() == "# placeholder\n"


_AWS_CURL = """case "$*" in
  *api/token*) echo imds-session ;;
  *local-ipv4*) echo "$ADDRESS" ;;
  *) exit 22 ;;
esac"""
_HCLOUD_CURL = """case "$*" in
  *private-networks*) printf -- '- ip: %s\\n  network: 10.0.0.0/16\\n' "$ADDRESS" ;;
  *) exit 22 ;;
esac"""


@pytest.mark.parametrize(("cloud", "curl"), [("aws", _AWS_CURL), ("hcloud", _HCLOUD_CURL)])
def test_proxy_address_comes_from_metadata_once_it_is_up(tmp_path, cloud, curl):
    need("ip")
    script = install(tmp_path / "sbin", "kumoproxy-address")
    fakes = tmp_path / "bin"
    _fake(fakes, "curl", curl)
    # The host's python3 has PyYAML (cloud-init needs it); so does this interpreter.
    (fakes / "python3").symlink_to(sys.executable)
    envfile = tmp_path / "etc" / "listen.env"
    done = _run(script, cloud, str(envfile), fakes=fakes, ADDRESS="127.0.0.1")
    assert done.returncode == 0, done.stderr
    assert envfile.read_text() == "KUMOPROXY_LISTEN_IP=127.0.0.1\n"
    if cloud == "aws":
        assert "X-aws-ec2-metadata-token: imds-session" in (fakes / "calls").read_text()


def test_proxy_address_that_is_not_up_leaves_the_unit_unconfigured(tmp_path):
    need("ip")
    script = install(tmp_path / "sbin", "kumoproxy-address")
    fakes = tmp_path / "bin"
    _fake(fakes, "curl", _AWS_CURL)
    envfile = tmp_path / "listen.env"
    done = _run(script, "aws", str(envfile), fakes=fakes, ADDRESS="192.0.2.77", KUMOPROXY_ADDRESS_ATTEMPTS="1")
    assert done.returncode == 1
    assert not envfile.exists()


class Loops:
    """Loop devices standing in for attached volumes; detached (and unmounted) afterwards."""

    def __init__(self, root: Path):
        self.root, self.devices, self.mounts = root, [], []

    def attach(self, size_mib: int = 8) -> str:
        image = self.root / f"disk{len(self.devices)}.img"
        image.write_bytes(b"")
        os.truncate(image, size_mib * 1024 * 1024)
        done = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot attach a loop device here ({done.stderr.strip()}); the spool test needs one")
        self.devices.append(done.stdout.strip())
        return self.devices[-1]

    def close(self):
        for mount in self.mounts:
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        for device in self.devices:
            subprocess.run(["losetup", "-d", device], capture_output=True, check=False)


@pytest.fixture
def loops(tmp_path):
    need("losetup", "mkfs.ext4", "blkid", "findmnt")
    if os.geteuid() != 0:
        pytest.skip("loop devices and mounts need root")
    pool = Loops(tmp_path)
    yield pool
    pool.close()


def _uuid(device: str) -> str:
    probe = ["blkid", "-p", "-s", "UUID", "-o", "value", device]
    return subprocess.run(probe, capture_output=True, text=True, check=False).stdout


def test_spool_formats_a_blank_volume_once_and_mounts_it_by_label(tmp_path, loops):
    script = install(tmp_path / "sbin", "kumomta-spool")
    device = loops.attach()
    label = "kt" + uuid.uuid4().hex[:10]
    mountpoint, fstab = tmp_path / "spool", tmp_path / "fstab"
    loops.mounts.append(mountpoint)
    done = _run(script, label, str(mountpoint), str(fstab), device, KUMOMTA_SPOOL_WAIT="0")
    assert done.returncode == 0, done.stderr
    line = f"LABEL={label} {mountpoint} ext4 defaults,nofail,x-systemd.device-timeout=30s 0 2\n"
    assert fstab.read_text() == line
    source = ["findmnt", "-n", "-o", "SOURCE", str(mountpoint)]
    assert subprocess.run(source, capture_output=True, text=True, check=True).stdout.strip() == device
    formatted = _uuid(device)
    (mountpoint / "queued-message").write_text("keep me")

    again = _run(script, label, str(mountpoint), str(fstab), device, KUMOMTA_SPOOL_WAIT="0")
    assert again.returncode == 0, again.stderr
    assert fstab.read_text() == line
    assert _uuid(device) == formatted
    assert (mountpoint / "queued-message").read_text() == "keep me"


def test_spool_never_formats_a_volume_that_holds_something(tmp_path, loops):
    script = install(tmp_path / "sbin", "kumomta-spool")
    device = loops.attach()
    subprocess.run(["mkfs.ext4", "-q", "-L", "somethingelse", device], check=True)
    before = _uuid(device)
    label = "kt" + uuid.uuid4().hex[:10]
    fstab = tmp_path / "fstab"
    done = _run(script, label, str(tmp_path / "spool"), str(fstab), device, KUMOMTA_SPOOL_WAIT="0")
    assert done.returncode == 1
    assert "no volume labelled" in done.stderr
    assert _uuid(device) == before
    # The entry stays, so kumod's RequiresMountsFor waits for the spool instead of using the root disk.
    assert fstab.read_text().startswith(f"LABEL={label} ")


def test_spool_labels_an_unlabelled_ext4_volume_without_formatting_it(tmp_path, loops):
    script = install(tmp_path / "sbin", "kumomta-spool")
    device = loops.attach()
    subprocess.run(["mkfs.ext4", "-q", device], check=True)  # as Hetzner's `format` leaves it
    before = _uuid(device)
    label = "kt" + uuid.uuid4().hex[:10]
    mountpoint = tmp_path / "spool"
    loops.mounts.append(mountpoint)
    done = _run(script, label, str(mountpoint), str(tmp_path / "fstab"), device, KUMOMTA_SPOOL_WAIT="0")
    assert done.returncode == 0, done.stderr
    assert "claiming unlabelled volume" in done.stdout
    assert _uuid(device) == before
    probe = subprocess.run(
        ["blkid", "-p", "-s", "LABEL", "-o", "value", device], capture_output=True, text=True, check=True
    )
    assert probe.stdout.strip() == label


def test_spool_refuses_to_guess_between_two_blank_volumes(tmp_path, loops):
    script = install(tmp_path / "sbin", "kumomta-spool")
    first, second = loops.attach(), loops.attach()
    label = "kt" + uuid.uuid4().hex[:10]
    done = _run(script, label, str(tmp_path / "spool"), str(tmp_path / "fstab"), first, second, KUMOMTA_SPOOL_WAIT="0")
    assert done.returncode == 1
    assert "2 candidate volumes" in done.stderr
    assert _uuid(first) == _uuid(second) == ""


def test_spool_grow_follows_a_resized_volume_online_and_is_idle_otherwise(tmp_path, loops):
    """Raising spoolVolumeGb grows the attached volume in place (EC2 ModifyVolume; Hetzner's volume resize);
    the file system must follow while kumod keeps running on it: resize2fs grows a mounted ext4 online."""
    need("resize2fs", "dumpe2fs", "blockdev")
    grow = install(tmp_path / "sbin", "kumomta-spool-grow")
    device = loops.attach(size_mib=32)
    subprocess.run(["mkfs.ext4", "-q", "-L", "kt" + uuid.uuid4().hex[:10], device], check=True)
    mountpoint = tmp_path / "spool"
    mountpoint.mkdir()
    subprocess.run(["mount", device, str(mountpoint)], check=True)
    loops.mounts.append(mountpoint)
    (mountpoint / "queued-message").write_text("keep me")

    idle = _run(grow, str(mountpoint))
    assert (idle.returncode, idle.stdout) == (0, "")  # nothing to grow, nothing said
    before = os.statvfs(mountpoint).f_blocks * os.statvfs(mountpoint).f_frsize

    os.truncate(tmp_path / "disk0.img", 64 * 1024 * 1024)
    subprocess.run(["losetup", "--set-capacity", device], check=True)  # the volume grew
    if not _online_resize_allowed():
        # This sandbox withholds CAP_SYS_RESOURCE, which the kernel's online resize ioctl needs (a host's root
        # has it): the decision is still made by the real tools on the real device, the resize is recorded.
        fakes = tmp_path / "bin"
        _fake(fakes, "resize2fs", "exit 0")
        done = _run(grow, str(mountpoint), fakes=fakes)
        assert done.returncode == 0, done.stderr
        assert (fakes / "calls").read_text() == f"resize2fs {device}\n"
        return
    done = _run(grow, str(mountpoint))
    assert done.returncode == 0, done.stderr
    assert "growing" in done.stdout
    after = os.statvfs(mountpoint).f_blocks * os.statvfs(mountpoint).f_frsize
    assert after > 1.8 * before
    assert (mountpoint / "queued-message").read_text() == "keep me"
    assert _run(grow, str(mountpoint)).stdout == ""


def _online_resize_allowed() -> bool:
    """CAP_SYS_RESOURCE (capability 24) in this process's effective set (capabilities(7))."""
    status = Path("/proc/self/status").read_text()
    effective = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)
    return bool(effective & (1 << 24))


def test_spool_grow_says_when_nothing_is_mounted(tmp_path):
    grow = install(tmp_path / "sbin", "kumomta-spool-grow")
    done = _run(grow, str(tmp_path / "not-mounted"))
    assert done.returncode == 1
    assert "nothing is mounted" in done.stderr
