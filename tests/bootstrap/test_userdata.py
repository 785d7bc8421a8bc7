"""First boot: valid cloud-config on both clouds, within their size limits whatever the fleet, and no secret."""

import base64
import gzip
import os
import subprocess

import pytest
import yaml

from components.bootstrap import first_boot, scripts
from components.bootstrap.userdata import USER_DATA_LIMITS, pack
from components.matrix import Role
from tests.bootstrap.conftest import CHANNELS, SUBNETS, TOKEN, need, settings

_VARIANTS = [{}, {"monitoringCidrs": ["10.9.0.0/24"], "ipv6": True, "ntpCidrs": ["192.0.2.123/32"]}]


def _render(role: str, cloud: str, **overrides) -> str:
    peer = "proxy" if role == "mta" else "mta"
    return first_boot(settings(cloud, **overrides), role, Role(role), CHANNELS[cloud], SUBNETS[cloud][peer])


def _doc(role: str, cloud: str, **overrides) -> dict:
    return yaml.safe_load(_render(role, cloud, **overrides))


def _files(doc: dict) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


@pytest.mark.parametrize("overrides", _VARIANTS)
@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_cloud_init_accepts_the_user_data(tmp_path, cloud, role, overrides):
    need("cloud-init")
    path = tmp_path / "user-data.yaml"
    path.write_text(_render(role, cloud, **overrides))
    checked = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid cloud-config" in checked.stdout


def _big(cloud: str) -> list[str]:
    """The longest lists each cloud takes, IPv6 on: the user data's worst case. Hetzner: 100 addresses a rule.
    AWS: 60 rules per security group and direction, so the MTA's inbound 80 + ping8 + trusted + admin <= 60."""
    n = 100 if cloud == "hcloud" else 19
    lists = {
        "ping8Cidrs": [f"203.0.113.{i}/32" for i in range(n)],
        "trustedCidrs": [f"198.51.100.{i}/32" for i in range(n)],
        "adminCidrs": [f"192.0.2.{i}/32" for i in range(n)],
        "monitoringCidrs": [f"10.9.{i}.0/24" for i in range(n)],
        "ipv6": True,
    }
    return [_render(role, cloud, **lists) for role in ("mta", "proxy")]


def test_hetzner_user_data_fits_its_32_kib_limit_once_packed():
    """Hetzner Cloud API, Create a Server: user_data "Cloud-Init user data to use during Server creation. This
    field is limited to 32KiB." cloud-init's Hetzner datasource base64-decodes user data ("possibly gzipped",
    cloudinit/sources/DataSourceHetzner.py), so it is sent packed. It does not grow with the fleet either: the
    proxies are named in the bundle."""
    for text in _big("hcloud"):
        packed = pack(text)
        assert len(packed) <= USER_DATA_LIMITS["hcloud"]
        assert gzip.decompress(base64.b64decode(packed, validate=True)).decode() == text


def test_aws_user_data_fits_its_16_kib_limit_once_packed():
    """EC2 RunInstances: "User data is limited to 16 KB, in raw form, before it is base64-encoded"."""
    for text in _big("aws"):
        packed = pack(text)
        assert len(base64.b64decode(packed)) <= USER_DATA_LIMITS["aws"]
        assert gzip.decompress(base64.b64decode(packed)).decode() == text
        assert pack(text) == packed  # same bytes every run, so a plan shows no change


def test_user_data_holds_no_secret_and_no_fleet(cloud):
    """The injection token reaches hosts only through the day-2 channel; the proxies are named in the bundle."""
    for role in ("mta", "proxy"):
        text = _render(role, cloud)
        assert TOKEN not in text
        assert "(?i:bearer)" not in text  # no bearer map line
        assert "/opt/kumomta/etc/policy/init.lua" not in _files(yaml.safe_load(text))
        assert "proxy.example.com" not in text.replace(f"{role}.example.com", "")


@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_files_land_after_packages_and_scripts_are_the_tested_ones(cloud, role):
    doc = _doc(role, cloud)
    assert all(f["defer"] for f in doc["write_files"])
    names = set()
    for f in doc["write_files"]:
        name = f["path"].removeprefix("/usr/local/sbin/")
        if name in scripts.NAMES:
            names.add(name)
            assert f["content"] == scripts.script(name)
            assert f["permissions"] == "0755"
    assert "kumomta-apply" in names
    assert ("kumomta-sync" in names) == (cloud == "aws")


@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_resolvers_clock_then_firewall_go_up_before_anything_is_fetched(cloud, role):
    doc = _doc(role, cloud)
    assert doc["runcmd"][:4] == [
        "/usr/local/sbin/kumomta-resolver /run/systemd/network /etc/systemd/network",
        "systemctl restart chrony.service",
        "nft -f /etc/nftables.conf",
        "systemctl enable nftables.service",
    ]
    assert {"nftables", "chrony"} <= set(doc["packages"])
    assert "ntp" not in doc  # chrony.conf is the bundle's, rendered from ntpCidrs


def _index(commands: list[str], needle: str) -> int:
    (i,) = [i for i, c in enumerate(commands) if needle in c]
    return i


def test_mta_mounts_the_spool_before_kumod_and_kumod_requires_it(cloud):
    doc = _doc("mta", cloud)
    commands = doc["runcmd"]
    assert _index(commands, "kumomta-spool kumospool /var/spool/kumomta") < _index(commands, "apt-get install")
    assert _index(commands, "apt-get install") < _index(commands, "chown kumod:kumod /var/spool/kumomta")
    dropin = _files(doc)["/etc/systemd/system/kumomta.service.d/spool.conf"]
    assert "RequiresMountsFor=/var/spool/kumomta" in dropin
    assert "disable --now kumo-tsa-daemon" in " ".join(commands)


@pytest.mark.parametrize(("role", "units"), [("mta", ["kumomta", "nginx"]), ("proxy", ["kumoproxy"])])
def test_services_start_only_once_their_configuration_is_applied(cloud, role, units):
    """Never on a package's defaults (KumoMTA's package installs a policy listening on 0.0.0.0:25 when none
    exists, assets/build-deb.sh and assets/init.lua), nor, on AWS, before kumomta-sync has put the secrets
    back on tmpfs after a reboot."""
    doc = _doc(role, cloud)
    state = "/run/kumomta-infra" if cloud == "aws" else "/var/lib/kumomta-infra"
    for unit in units:
        dropin = _files(doc)[f"/etc/systemd/system/{unit}.service.d/kumomta-applied.conf"]
        assert f"ConditionPathExists={state}/applied.json" in dropin
        assert not any(f"start {unit}" in c or f"restart {unit}" in c for c in doc["runcmd"])


def test_spool_is_looked_for_where_each_cloud_attaches_it():
    aws = " ".join(_doc("mta", "aws")["runcmd"])
    hcloud = " ".join(_doc("mta", "hcloud")["runcmd"])
    assert "'/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_*'" in aws
    assert "'/dev/disk/by-id/scsi-0HC_Volume_*'" in hcloud


def test_dkim_keys_belong_to_kumod(cloud):
    dkim = [c for c in _doc("mta", cloud)["runcmd"] if "/opt/kumomta/etc/dkim" in c]
    assert dkim[0] == (
        "install -d /opt/kumomta/etc/dkim && chown kumod:kumod /opt/kumomta/etc/dkim && chmod 0700 /opt/kumomta/etc/dkim"
    )
    # AWS: on tmpfs, like the bearer map, so no snapshot of the root volume carries them; kumomta-sync puts them back.
    assert dkim[1:] == (
        [
            (
                'echo "tmpfs /opt/kumomta/etc/dkim tmpfs mode=0700,size=1m,nosuid,nodev,noexec,uid=$(id -u kumod),'
                'gid=$(id -g kumod) 0 0" >> /etc/fstab'
            ),
            "mount /opt/kumomta/etc/dkim",
        ]
        if cloud == "aws"
        else []
    )


def test_the_kernel_takes_the_secret_tmpfs_options(tmp_path):
    """tmpfs(5): mode, size, uid and gid; mount(8): nosuid, nodev, noexec. A refused option would leave the
    directory on the root disk, so it is mounted for real here (it needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting tmpfs needs root")
    target = tmp_path / "dkim"
    target.mkdir()
    options = "mode=0700,size=1m,nosuid,nodev,noexec,uid=65534,gid=65534"
    assert _doc("mta", "aws")["mounts"][0][3] == options.rsplit(",uid", 1)[0]
    mount = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    try:
        stat = target.stat()
        assert (stat.st_uid, oct(stat.st_mode & 0o777)) == (65534, "0o700")
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_proxy_runs_only_kumoproxy(cloud):
    doc = _doc("proxy", cloud)
    commands = doc["runcmd"]
    assert "systemctl disable --now kumomta.service kumo-tsa-daemon.service" in commands
    assert f"/usr/local/sbin/kumoproxy-address {cloud} /etc/kumoproxy/listen.env" in commands
    assert "systemctl enable kumoproxy.service" in commands
    assert "nginx" not in doc["packages"]


def test_acme_uses_the_webroot_and_the_deploy_hook():
    unit = _files(_doc("mta", "aws"))["/etc/systemd/system/kumomta-acme.service"]
    assert "--webroot --webroot-path /var/www/acme --domain mta.example.com" in unit
    assert '--deploy-hook "/usr/local/sbin/kumomta-cert-deploy /etc/nginx/kumomta-tls"' in unit
    assert "ConditionPathExists=!/etc/letsencrypt/live/mta.example.com/fullchain.pem" in unit


def test_kumod_owns_its_etc_directories_although_files_were_written_first():
    """The package's preinst creates /opt/kumomta/etc and /opt/kumomta/etc/policy owned by kumod only when they
    do not exist (`[ -d "$dir" ] || install -d --owner kumod ...`, KumoMTA assets/build-deb.sh), and cloud-init's
    deferred write_files runs before runcmd installs the package, so they were root's and kumod could not write
    its node id (/opt/kumomta/etc/.nodeid, crates/kumo-server-common/src/nodeid.rs)."""
    commands = _doc("mta", "aws")["runcmd"]
    fix = "install -d -o kumod -g kumod -m 0755 /opt/kumomta/etc /opt/kumomta/etc/policy"
    assert _index(commands, "apt-get install -y -q kumomta") < commands.index(fix) < _index(commands, "kumomta-sync eu")


@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_aws_hosts_fetch_their_first_bundle_then_follow_up_every_30_seconds(role):
    """kumomta-sync reads the host's SSM parameter with the instance role; a fresh role's credentials take a while
    to work, hence --wait. The timer then polls; the sync service keeps its state on tmpfs (/run)."""
    doc = _doc(role, "aws")
    commands = doc["runcmd"]
    first = "KUMOMTA_STATE=/run/kumomta-infra /usr/local/sbin/kumomta-sync eu-central-1 /kumomta/prod/mta/mta/bundle"
    assert commands[-2:] == [f"{first} --wait 900", "systemctl enable --now kumomta-sync.timer"]
    files = _files(doc)
    assert "OnUnitActiveSec=30s" in files["/etc/systemd/system/kumomta-sync.timer"]
    service = files["/etc/systemd/system/kumomta-sync.service"]
    assert "Environment=KUMOMTA_STATE=/run/kumomta-infra" in service
    assert "ExecStart=/usr/local/sbin/kumomta-sync eu-central-1 /kumomta/prod/mta/mta/bundle" in service
    assert "python3-boto3" in doc["packages"]


def test_aws_mta_keeps_its_secrets_on_tmpfs():
    """So no EBS snapshot or AMI of the root volume carries the bearer map (the guide's "What not to expose")."""
    (mount,) = _doc("mta", "aws")["mounts"]
    assert mount[:3] == ["tmpfs", "/etc/nginx/kumomta-secrets", "tmpfs"]
    assert "mode=0700" in mount[3] and "noexec" in mount[3]
    assert "mounts" not in _doc("proxy", "aws")


@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_hetzner_hosts_accept_the_deploy_key_for_kumomta_apply_only_and_offer_the_pinned_host_key(role):
    """sshd(8) AUTHORIZED_KEYS: `restrict` disables forwarding, PTYs and user rc; `command=` forces the one
    command. sudoers(5): the rule names kumomta-apply with exactly these arguments."""
    doc, channel = _doc(role, "hcloud"), CHANNELS["hcloud"]
    (sync,) = [u for u in doc["users"] if isinstance(u, dict)]
    command = "/usr/local/sbin/kumomta-apply --wait-boot 1200"
    assert sync["name"] == "kumomta-sync" and sync["lock_passwd"] is True and "default" in doc["users"]
    assert sync["ssh_authorized_keys"] == [f'restrict,command="sudo -n {command}" {channel.deploy_key}']
    assert sync["sudo"] == f"ALL=(root) NOPASSWD: {command}"
    assert doc["ssh_keys"] == {
        "ed25519_private": channel.host_private_key,
        "ed25519_public": channel.host_public_key,
    }
    assert doc["ssh_genkeytypes"] == ["ed25519"] and doc["ssh_deletekeys"] is True
