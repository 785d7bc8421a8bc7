"""The rendered policies against KumoMTA's own binaries, when a build of them is at hand (`KUMOMTA_SBIN`: a
directory holding `kumod` and `proxy-server`). KumoMTA is in no registry this project installs from, so CI skips
these; they are how the README's "measured against KumoMTA itself" is repeated.

Each runs in private namespaces (root): a mount namespace with tmpfs over the paths the policies name, and a
network namespace with only loopback, so nothing on the machine changes and nothing leaves it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from components.bootstrap import bearer_map, mta_bundle, proxy_bundle
from components.bootstrap.peers import DkimKey
from tests.bootstrap.conftest import PROXIES, SUBNETS, TOKEN, settings

SBIN = Path(os.environ.get("KUMOMTA_SBIN", "/nonexistent"))
pytestmark = [
    pytest.mark.optional,
    pytest.mark.skipif(
        not (SBIN / "kumod").exists(), reason="KUMOMTA_SBIN does not name a KumoMTA build (none in any registry)"
    ),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"),
]

MONITORING, LISTEN, OUTSIDER = "10.9.0.5", "10.42.2.10", "10.42.1.10"


def _write(root: Path, files) -> None:
    for f in files:
        path = root / f.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f.content)


def _isolated(root: Path, script: str, timeout: int = 60) -> subprocess.CompletedProcess:
    """`script` in new mount and network namespaces: tmpfs over /opt/kumomta's parent, the spool and log
    directories, the rendered /opt/kumomta bound in, loopback up."""
    setup = f"""
set -e
ip link set lo up
mount -t tmpfs tmpfs /opt && mkdir -p /opt/kumomta && mount --bind {root}/opt/kumomta /opt/kumomta
mkdir -p /opt/kumomta/sbin && cp {SBIN}/kumod {SBIN}/proxy-server /opt/kumomta/sbin/
mount -t tmpfs tmpfs /var/spool && mkdir -p /var/spool/kumomta && chown nobody /var/spool/kumomta
mount -t tmpfs tmpfs /var/log && mkdir -p /var/log/kumomta && chown nobody /var/log/kumomta
"""
    return subprocess.run(
        ["unshare", "-m", "-n", "--propagation", "private", "sh", "-c", setup + script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _dkim_keys() -> list[DkimKey]:
    none = serialization.NoEncryption()
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, none
    )
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, none
    )
    return [
        DkimKey("example.com", "s1", "rsa", 0, rsa_pem.decode()),
        DkimKey("example.com", "s1-ed25519", "ed25519", 0, ed_pem.decode()),
    ]


def _mta_policy(tmp_path: Path, cloud: str) -> Path:
    bundle = mta_bundle(
        settings(cloud), "mta", SUBNETS[cloud]["proxy"], PROXIES[cloud], bearer_map(TOKEN, None), _dkim_keys()
    )
    root = tmp_path / "root"
    _write(root, bundle.files)
    return root


@pytest.mark.parametrize("cloud", ["aws", "hcloud"])
def test_kumod_validates_the_rendered_mta_policy_with_its_dkim_keys(tmp_path, cloud):
    """kumomta-apply runs this same command before it activates a new policy (crates/kumod/src/main.rs:
    `--validate` runs the init and validate_config events and exits)."""
    root = _mta_policy(tmp_path, cloud)
    done = _isolated(root, "/opt/kumomta/sbin/kumod --validate --policy /opt/kumomta/etc/policy/init.lua --user nobody")
    assert done.returncode == 0, done.stdout + done.stderr


def test_kumod_validation_refuses_a_broken_policy(tmp_path):
    """So the validation step of the day-2 channel is worth something: a listener option kumod does not know."""
    root = _mta_policy(tmp_path, "aws")
    policy = root / "opt/kumomta/etc/policy/init.lua"
    policy.write_text(policy.read_text().replace("request_body_limit =", "request_body_limitt ="))
    done = _isolated(root, "/opt/kumomta/sbin/kumod --validate --policy /opt/kumomta/etc/policy/init.lua --user nobody")
    assert done.returncode != 0
    assert "request_body_limitt" in done.stdout + done.stderr


# Run inside the namespace: plain HTTP from a chosen source address, and HTTP through a SOCKS5 CONNECT (RFC 1928)
# to the proxy's own loopback, as any client of the proxy could send it.
PROBE = """
import http.client, socket, struct, sys
listen, monitoring, outsider = sys.argv[1:4]

def get(source, path):
    c = http.client.HTTPConnection(listen, 9101, timeout=5, source_address=(source, 0))
    c.request("GET", path)
    return c.getresponse().status

def socks_get(path):
    with socket.create_connection((listen, 5000), timeout=5) as s:
        s.sendall(b"\\x05\\x01\\x00")
        assert s.recv(2) == b"\\x05\\x00"
        s.sendall(b"\\x05\\x01\\x00\\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", 9101))
        assert s.recv(10)[:2] == b"\\x05\\x00"
        s.sendall(("GET " + path + " HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n").encode())
        status = s.recv(200).decode(errors="replace").split()
        return status[1] if len(status) > 1 else "no answer"

print("monitoring-metrics", get(monitoring, "/metrics"))
print("outsider-metrics", get(outsider, "/metrics"))
print("monitoring-admin", get(monitoring, "/api/admin/memory/stats"))
print("socks-admin", socks_get("/api/admin/memory/stats"))
"""


def test_proxy_metrics_reach_the_monitoring_networks_and_nothing_else(tmp_path):
    """The rendered KumoProxy policy under the real proxy-server: the monitoring network gets GET /metrics, no
    one gets the admin API, not even through the proxy's own SOCKS5 to its loopback (which KumoMTA's default ACL
    trusts: before `trusted_hosts = {}`, that request answered 200)."""
    bundle = proxy_bundle(settings("aws", monitoringCidrs=["10.9.0.0/24"]), "proxy", SUBNETS["aws"]["mta"])
    root = tmp_path / "root"
    _write(root, bundle.files)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    python = sys.executable
    script = f"""
for a in {MONITORING} {LISTEN} {OUTSIDER}; do ip addr add $a/32 dev lo; done
mkdir -p /tmp/node && export KUMO_NODE_ID_PATH=/tmp/node/nodeid KUMOPROXY_LISTEN_IP={LISTEN}
/opt/kumomta/sbin/proxy-server --proxy-config /opt/kumomta/etc/proxy/proxy.lua >/tmp/node/log 2>&1 &
PROXY=$!
for i in $(seq 50); do {python} -c "import socket; socket.create_connection(('{LISTEN}', 9101), 1)" 2>/dev/null && break; sleep 0.2; done
{python} {probe} {LISTEN} {MONITORING} {OUTSIDER} || cat /tmp/node/log
test -s /tmp/node/nodeid && echo node-id-written
kill $PROXY
"""
    done = _isolated(root, script)
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines.get("monitoring-metrics") == "200", done.stdout + done.stderr
    assert lines.get("outsider-metrics") == "401"
    assert lines.get("monitoring-admin") == "401"
    assert lines.get("socks-admin") == "401", done.stderr[-2000:]
    assert "node-id-written" in done.stdout
