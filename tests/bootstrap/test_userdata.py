"""Rendered user data: valid cloud-config on both clouds, within their size limits, no secret on AWS."""

import base64
import gzip
import re
import subprocess

import pytest
import yaml

from components.bootstrap import InlineToken, ProxyTarget, mta_user_data, proxy_user_data, scripts
from components.bootstrap.userdata import USER_DATA_LIMITS, pack
from tests.bootstrap.conftest import CHANNELS, MTA_SOURCES, PROXIES, TOKEN, need, settings

_VARIANTS = [{}, {"monitoringCidrs": ["10.9.0.0/24"], "ipv6": True, "ntpCidrs": ["192.0.2.123/32"]}]


def _render(role: str, cloud: str, **overrides) -> str:
    s = settings(cloud, **overrides)
    if role == "mta":
        return mta_user_data(s, "mta", PROXIES[cloud], CHANNELS[cloud])
    return proxy_user_data(s, "proxy", MTA_SOURCES[cloud])


def _big(cloud: str) -> tuple[str, str]:
    """A fleet at the size the README promises: 20 proxies, 20 + 20 client networks, IPv6."""
    s = settings(
        cloud,
        ping8Cidrs=[f"203.0.113.{i}/32" for i in range(20)],
        trustedCidrs=[f"198.51.100.{i}/32" for i in range(20)],
        adminCidrs=[f"192.0.2.{i}/32" for i in range(10)],
        monitoringCidrs=["10.9.0.0/24"],
        ipv6=True,
    )
    proxies = [ProxyTarget(f"p{i}.example.com", f"10.0.1.{i + 10}", f"198.51.100.{i + 100}") for i in range(20)]
    mtas = [f"10.0.1.{i}" for i in range(2, 10)]
    return mta_user_data(s, "mta", proxies, CHANNELS[cloud]), proxy_user_data(s, "proxy", mtas)


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


def test_hetzner_user_data_fits_its_32_kib_limit_in_plain_text():
    for text in _big("hcloud"):
        assert len(text.encode()) <= USER_DATA_LIMITS["hcloud"]


def test_aws_user_data_fits_its_16_kib_limit_once_packed():
    for text in _big("aws"):
        packed = pack(text)
        assert len(base64.b64decode(packed)) <= USER_DATA_LIMITS["aws"]
        assert gzip.decompress(base64.b64decode(packed)).decode() == text
        assert pack(text) == packed  # same bytes every run, so a plan shows no change


def test_no_secret_in_aws_user_data():
    text = _render("mta", "aws")
    assert TOKEN not in text
    assert re.search(r'"Bearer [A-Za-z0-9._~+/=-]{32,}" 1;', text) is None
    files = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
    assert files["/etc/nginx/kumomta-bearer.map"].startswith("#")
    assert "kumomta-token.service" in " ".join(yaml.safe_load(text)["runcmd"])


def test_hetzner_mta_carries_the_token_in_a_root_only_file():
    files = {f["path"]: f for f in yaml.safe_load(_render("mta", "hcloud"))["write_files"]}
    token_map = files["/etc/nginx/kumomta-bearer.map"]
    assert token_map["content"] == f'"~^(?i:bearer) +{TOKEN}$" 1;\n'
    assert token_map["permissions"] == "0600"
    assert "/usr/local/sbin/kumomta-token" not in files


def test_inline_token_never_shows_in_a_repr():
    assert TOKEN not in repr(InlineToken(TOKEN))


@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_files_land_after_packages_and_scripts_are_the_tested_ones(cloud, role):
    doc = yaml.safe_load(_render(role, cloud))
    assert all(f["defer"] for f in doc["write_files"])
    for f in doc["write_files"]:
        name = f["path"].removeprefix("/usr/local/sbin/")
        if name in scripts.NAMES:
            assert f["content"] == scripts.script(name)
            assert f["permissions"] == "0755"


@pytest.mark.parametrize("role", ["mta", "proxy"])
def test_resolvers_then_firewall_go_up_before_anything_is_fetched(cloud, role):
    commands = yaml.safe_load(_render(role, cloud))["runcmd"]
    assert commands[:3] == [
        "/usr/local/sbin/kumomta-resolver /run/systemd/network /etc/systemd/network",
        "nft -f /etc/nftables.conf",
        "systemctl enable nftables.service",
    ]
    assert "nftables" in yaml.safe_load(_render(role, cloud))["packages"]


def _index(commands: list[str], needle: str) -> int:
    (i,) = [i for i, c in enumerate(commands) if needle in c]
    return i


def test_mta_mounts_the_spool_before_kumod_and_kumod_requires_it(cloud):
    doc = yaml.safe_load(_render("mta", cloud))
    commands = doc["runcmd"]
    assert _index(commands, "kumomta-spool kumospool /var/spool/kumomta") < _index(commands, "apt-get install")
    assert _index(commands, "apt-get install") < _index(commands, "chown kumod:kumod /var/spool/kumomta")
    assert _index(commands, "chown kumod:kumod /var/spool/kumomta") < _index(commands, "restart kumomta")
    dropin = {f["path"]: f["content"] for f in doc["write_files"]}["/etc/systemd/system/kumomta.service.d/spool.conf"]
    assert "RequiresMountsFor=/var/spool/kumomta" in dropin
    assert "disable --now kumo-tsa-daemon" in " ".join(commands)


def test_spool_is_looked_for_where_each_cloud_attaches_it():
    aws = " ".join(yaml.safe_load(_render("mta", "aws"))["runcmd"])
    hcloud = " ".join(yaml.safe_load(_render("mta", "hcloud"))["runcmd"])
    assert "'/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_*'" in aws
    assert "'/dev/disk/by-id/scsi-0HC_Volume_*'" in hcloud


def test_dkim_keys_belong_to_kumod_outside_any_web_root(cloud):
    doc = yaml.safe_load(_render("mta", cloud))
    dkim = [c for c in doc["runcmd"] if "/opt/kumomta/etc/dkim" in c]
    assert dkim == [
        "install -d /opt/kumomta/etc/dkim && chown kumod:kumod /opt/kumomta/etc/dkim && chmod 0700 /opt/kumomta/etc/dkim"
    ]
    site = {f["path"]: f["content"] for f in doc["write_files"]}["/etc/nginx/conf.d/kumomta.conf"]
    roots = [line.split()[1].rstrip(";") for line in site.splitlines() if line.strip().startswith("root ")]
    assert roots == ["/var/www/acme"]


def test_proxy_runs_only_kumoproxy(cloud):
    doc = yaml.safe_load(_render("proxy", cloud))
    commands = doc["runcmd"]
    assert "systemctl disable --now kumomta.service kumo-tsa-daemon.service" in commands
    assert f"/usr/local/sbin/kumoproxy-address {cloud} /etc/kumoproxy/listen.env" in commands
    assert commands[-1] == "systemctl enable --now kumoproxy.service"
    assert "nginx" not in doc["packages"]


def test_acme_uses_the_webroot_and_the_deploy_hook():
    files = {f["path"]: f["content"] for f in yaml.safe_load(_render("mta", "aws"))["write_files"]}
    unit = files["/etc/systemd/system/kumomta-acme.service"]
    assert "--webroot --webroot-path /var/www/acme --domain mta.example.com" in unit
    assert '--deploy-hook "/usr/local/sbin/kumomta-cert-deploy /etc/nginx/kumomta-tls"' in unit
    assert "ConditionPathExists=!/etc/letsencrypt/live/mta.example.com/fullchain.pem" in unit


def test_kumod_owns_its_etc_directories_although_the_policy_was_written_first():
    """The package's preinst creates /opt/kumomta/etc and /opt/kumomta/etc/policy owned by kumod only when they
    do not exist (`[ -d "$dir" ] || install -d --owner kumod ...`, KumoMTA assets/build-deb.sh), and cloud-init's
    deferred write_files runs before runcmd installs the package, so they were root's and kumod could not write
    its node id (/opt/kumomta/etc/.nodeid, crates/kumo-server-common/src/nodeid.rs)."""
    commands = yaml.safe_load(_render("mta", "aws"))["runcmd"]
    fix = "install -d -o kumod -g kumod -m 0755 /opt/kumomta/etc /opt/kumomta/etc/policy"
    assert _index(commands, "apt-get install -y -q kumomta") < commands.index(fix) < _index(commands, "restart kumomta")
