"""kumomta-apply, the host half of the day-2 channel, run for real on a throw-away root.

The services' own tools are stand-ins on PATH that log their calls (nft, nginx, systemctl, chronyd, kumod),
so each test can say what was validated, what was activated and what was refused.
"""

import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from components.bootstrap import ProxyTarget, bearer_map, mta_bundle, proxy_bundle
from components.bootstrap.render import TEMPLATES
from tests.bootstrap.conftest import PROXIES, SUBNETS, TOKEN, settings

APPLY = TEMPLATES / "sbin" / "kumomta-apply"
_FAKE = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_CALLS"
case " $FAKE_FAIL " in *" $(basename "$0") "*) echo "$(basename "$0"): refused by the test" >&2; exit 1 ;; esac
if [ "$(basename "$0")" = systemctl ] && [ "$1" = is-active ]; then
    case " $FAKE_INACTIVE " in *" $3 "*) exit 3 ;; esac
fi
if [ "$(basename "$0")" = systemctl ] && [ "$1" = show ]; then
    # A unit in FAKE_FLAPPING restarts between any two looks at it.
    case " $FAKE_FLAPPING " in *" $4 "*)
        n=$(cat "$FAKE_CALLS.restarts" 2>/dev/null || echo 0); echo "ActiveState=active"; echo "NRestarts=$n"
        echo $((n + 1)) > "$FAKE_CALLS.restarts" ;;
    esac
fi
exit 0
"""


def _module():
    """The script as a module, to read its table of what a bundle may write."""
    loader = importlib.machinery.SourceFileLoader("kumomta_apply", str(APPLY))
    spec = importlib.util.spec_from_loader("kumomta_apply", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class Host:
    """A root for kumomta-apply: files under root/, its state in state/, the services' tools faked."""

    def __init__(self, tmp_path: Path):
        self.root, self.state, self.bin = tmp_path / "root", tmp_path / "state", tmp_path / "bin"
        self.log = tmp_path / "calls"
        for tool in ("nft", "nginx", "systemctl", "chronyd", "logger"):
            self._fake(self.bin / tool)
        self._fake(self.root / "opt/kumomta/sbin/kumod")

    def _fake(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_FAKE)
        path.chmod(0o755)

    def apply(
        self, bundle, *args: str, fail: str = "", inactive: str = "", flapping: str = ""
    ) -> subprocess.CompletedProcess:
        text = bundle if isinstance(bundle, str) else bundle.json(inline_secrets=True)
        self.log.write_text("")
        env = {
            **os.environ,
            "PATH": f"{self.bin}:{os.environ['PATH']}",
            "KUMOMTA_APPLY_ROOT": str(self.root),
            "KUMOMTA_STATE": str(self.state),
            "FAKE_CALLS": str(self.log),
            "FAKE_FAIL": fail,
            "FAKE_INACTIVE": inactive,
            "FAKE_FLAPPING": flapping,
            "KUMOMTA_ACTIVE_WAIT": "2",
            "KUMOMTA_SETTLE": "0.1",
        }
        return subprocess.run(
            [sys.executable, str(APPLY), *args],
            input=text,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def calls(self) -> list[str]:
        return [line.replace(str(self.root), "") for line in self.log.read_text().splitlines()]

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def applied(self) -> str | None:
        path = self.state / "applied.json"
        return json.loads(path.read_text())["version"] if path.exists() else None


def _mta(cloud: str = "hcloud", proxies=None, token: str = TOKEN):
    s = settings(cloud)
    return mta_bundle(s, "mta", SUBNETS[cloud]["proxy"], proxies or PROXIES[cloud], bearer_map(token, None))


def test_every_file_a_bundle_holds_is_one_the_host_lets_it_write(cloud):
    module = _module()
    s = settings(cloud, monitoringCidrs=["10.9.0.0/24"])
    for bundle in (_mta(cloud), proxy_bundle(s, "proxy", SUBNETS[cloud]["mta"])):
        for f in bundle.files:
            assert module._group(f.path) is not None, f.path
        for owned in bundle.owns:
            assert any(owned in g["files"] for g in module.GROUPS), owned


def test_a_first_bundle_is_validated_then_applied_and_recorded(tmp_path):
    host, bundle = Host(tmp_path), _mta()
    done = host.apply(bundle)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"applied {bundle.version}: firewall, resolver, clock, nginx, kumod"
    for f in bundle.files:
        assert host.file(f.path).read_text() == f.content
        assert oct(host.file(f.path).stat().st_mode & 0o777) == oct(int(f.mode, 8))
    calls = host.calls()
    # Every validation before any activation, each with the file as the host sees it.
    validations = ["nft -c -f /etc/nftables.conf", "chronyd -p -f /etc/chrony/chrony.conf", "nginx -t -q",
                   "kumod --validate --policy /opt/kumomta/etc/policy/init.lua --user kumod"]  # fmt: skip
    assert calls[: len(validations)] == validations
    assert "nft -f /etc/nftables.conf" in calls and "systemctl start kumomta.service" in calls
    assert calls.index("nft -f /etc/nftables.conf") > calls.index(validations[-1])
    assert host.applied() == bundle.version
    assert not list(host.root.rglob("*.kumomta-*"))  # no staged or backup file left behind


def test_the_same_bundle_again_changes_nothing(tmp_path):
    host, bundle = Host(tmp_path), _mta()
    host.apply(bundle)
    done = host.apply(bundle)
    assert (done.returncode, done.stdout.strip()) == (0, f"up to date {bundle.version}")
    assert host.calls() == []


def test_check_compares_secrets_by_their_hash_without_their_content(tmp_path):
    host, bundle = Host(tmp_path), _mta("aws")
    named = replace(bundle, files=tuple(replace(f, parameter="/p") if "secrets" in f.path else f for f in bundle.files))
    without_secrets = named.json(inline_secrets=False)
    assert TOKEN not in without_secrets
    assert host.apply(without_secrets, "--check").returncode == 10
    assert host.apply(bundle).returncode == 0
    assert host.apply(without_secrets, "--check").returncode == 0
    host.file("/etc/nginx/kumomta-secrets/bearer.map").unlink()  # tmpfs after a reboot
    assert host.apply(without_secrets, "--check").returncode == 10


def test_only_what_changed_is_validated_and_activated(tmp_path):
    host = Host(tmp_path)
    host.apply(_mta())
    # A new proxy changes kumod's policy only: kumod re-reads it by itself (its config epoch).
    more = [*PROXIES["hcloud"], ProxyTarget("proxy3.example.com", "10.43.2.12", "198.51.100.22")]
    done = host.apply(_mta(proxies=more))
    assert done.returncode == 0, done.stderr
    assert host.calls() == [
        "kumod --validate --policy /opt/kumomta/etc/policy/init.lua --user kumod",
        "systemctl start kumomta.service",
        "systemctl is-active --quiet kumomta.service",
        *2 * ["systemctl show -p ActiveState,MainPID,NRestarts kumomta.service"],  # it stays up
    ]
    # A new token changes Nginx's bearer map only.
    rotated = _mta(proxies=more, token="N" * 48)
    assert host.apply(rotated).returncode == 0
    assert host.calls() == [
        "nginx -t -q",
        "systemctl reload-or-restart nginx.service",
        "systemctl is-active --quiet nginx.service",
        *2 * ["systemctl show -p ActiveState,MainPID,NRestarts nginx.service"],
    ]
    assert "N" * 48 in host.file("/etc/nginx/kumomta-secrets/bearer.map").read_text()


def test_a_change_its_service_refuses_leaves_the_host_as_it_was(tmp_path):
    host, old = Host(tmp_path), _mta()
    host.apply(old)
    before = {f.path: host.file(f.path).read_text() for f in old.files}
    new = _mta(token="R" * 48)
    done = host.apply(new, fail="nginx")
    assert done.returncode == 2
    assert "refused by nginx" in done.stderr and "the host keeps its configuration" in done.stderr
    assert {f.path: host.file(f.path).read_text() for f in old.files} == before
    assert host.applied() == old.version
    assert json.loads((host.state / "failed.json").read_text())["version"] == new.version
    assert not any("reload" in call or "start" in call for call in host.calls())
    assert host.calls()[-1].startswith("logger -t kumomta-apply -p daemon.err refused by nginx")


def test_a_service_that_does_not_come_back_is_rolled_back_loudly(tmp_path):
    host = Host(tmp_path)
    s = settings("aws")
    old = proxy_bundle(s, "proxy", SUBNETS["aws"]["mta"])
    assert host.apply(old).returncode == 0
    new = proxy_bundle(settings("aws", monitoringCidrs=["10.9.0.0/24"]), "proxy", SUBNETS["aws"]["mta"])
    done = host.apply(new, inactive="kumoproxy.service")
    assert done.returncode == 3
    assert "rolled back: kumoproxy left kumoproxy.service inactive" in done.stderr
    policy = "/opt/kumomta/etc/proxy/proxy.lua"
    assert host.file(policy).read_text() == next(f.content for f in old.files if f.path == policy)
    assert host.calls().count("systemctl restart kumoproxy.service") == 2  # the new version, then the old again
    assert host.applied() == old.version


def test_a_service_that_restarts_after_it_came_up_is_rolled_back_too(tmp_path):
    """A Type=simple unit is active from its fork (systemd.service(5), Type=); proxy-server that dies on its new
    policy is active first, then restarted by Restart=on-failure. The restart count gives it away."""
    host = Host(tmp_path)
    old = proxy_bundle(settings("aws"), "proxy", SUBNETS["aws"]["mta"])
    assert host.apply(old).returncode == 0
    new = proxy_bundle(settings("aws", monitoringCidrs=["10.9.0.0/24"]), "proxy", SUBNETS["aws"]["mta"])
    done = host.apply(new, flapping="kumoproxy.service")
    assert done.returncode == 3
    assert "rolled back: kumoproxy did not stay up: kumoproxy.service went from" in done.stderr
    assert "NRestarts=0" in done.stderr and "NRestarts=1" in done.stderr
    assert host.applied() == old.version


@pytest.mark.parametrize(
    ("path", "why"),
    [("/etc/sudoers.d/evil", "is not a file this host lets a bundle write"),
     ("/etc/nginx/kumomta-secrets/../../shadow", "is not a file this host lets a bundle write"),
     ("/opt/kumomta/etc/dkim/", "is not a file this host lets a bundle write")],
)  # fmt: skip
def test_a_bundle_writes_nothing_outside_the_configuration_it_manages(tmp_path, path, why):
    host, bundle = Host(tmp_path), _mta()
    document = bundle.document(inline_secrets=True)
    document["files"].append({**document["files"][0], "path": path})
    done = host.apply(json.dumps(document))
    assert done.returncode == 4 and why in done.stderr
    assert not host.file("/etc/nftables.conf").exists()


def test_content_that_does_not_match_its_hash_is_refused(tmp_path):
    document = _mta().document(inline_secrets=True)
    document["files"][0]["content"] += "# tampered\n"
    done = Host(tmp_path).apply(json.dumps(document))
    assert done.returncode == 4 and "does not match its sha256" in done.stderr


def test_a_file_no_longer_listed_in_an_owned_directory_goes(tmp_path):
    host, bundle = Host(tmp_path), _mta()
    host.apply(bundle)
    leftover = host.file("/etc/nginx/kumomta-secrets/old.map")
    leftover.write_text('"~^(?i:bearer) +old$" 1;\n')
    assert host.apply(bundle, "--check").returncode == 10
    done = host.apply(bundle)
    assert done.returncode == 0, done.stderr
    assert not leftover.exists()
    assert host.calls()[0] == "nginx -t -q"


def test_a_push_during_first_boot_waits_for_cloud_init(tmp_path):
    host = Host(tmp_path)
    finished = host.file("/var/lib/cloud/instance/boot-finished")
    finished.parent.mkdir(parents=True)
    timer = threading.Timer(1.5, finished.write_text, args=("done\n",))
    timer.start()
    started = time.monotonic()
    done = host.apply(_mta(), "--wait-boot", "30")
    timer.join()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 1.5


def test_a_version_that_failed_is_held_before_its_next_try(tmp_path):
    """The AWS agent checks every 30 s; a bundle that breaks a service must not restart it every round."""
    host = Host(tmp_path)
    s = settings("aws")
    old = proxy_bundle(s, "proxy", SUBNETS["aws"]["mta"])
    host.apply(old)
    new = proxy_bundle(settings("aws", monitoringCidrs=["10.9.0.0/24"]), "proxy", SUBNETS["aws"]["mta"])
    assert host.apply(new, inactive="kumoproxy.service").returncode == 3
    held = host.apply(new, "--check")
    assert held.returncode == 11
    assert held.stdout.startswith(f"held: {new.version} failed 1 time(s) (rolled back: kumoproxy")
    assert "next try in 300 s" in held.stdout or "next try in 299 s" in held.stdout
    assert host.calls() == []  # nothing touched while held
    # A push (Hetzner's `pulumi up`) always tries, and a second failure doubles the hold.
    assert host.apply(new, inactive="kumoproxy.service").returncode == 3
    assert "failed 2 time(s)" in host.apply(new, "--check").stdout
    assert json.loads((host.state / "failed.json").read_text())["tries"] == 2
    # Once the hold has passed, the version is out of date again; another version is never held.
    failed = json.loads((host.state / "failed.json").read_text())
    (host.state / "failed.json").write_text(json.dumps({**failed, "at": failed["at"] - 600}))
    assert host.apply(new, "--check").returncode == 10
    other = proxy_bundle(settings("aws", monitoringCidrs=["10.8.0.0/24"]), "proxy", SUBNETS["aws"]["mta"])
    assert host.apply(other, "--check").returncode == 10


def test_holds_grow_to_an_hour_at_most():
    module = _module()
    assert module.FIRST_HOLD == 300 and module.LONGEST_HOLD == 3600
    waits = [min(module.FIRST_HOLD * 2 ** (tries - 1), module.LONGEST_HOLD) for tries in range(1, 7)]
    assert waits == [300, 600, 1200, 2400, 3600, 3600]
