"""The kumod and KumoProxy policies: valid Lua, run against stand-ins of the `kumo` modules."""

import ipaddress
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from components.bootstrap import kumo, layout, nginx
from components.bootstrap.peers import ProxyTarget
from tests.bootstrap.conftest import PROXIES, need, settings

STUB = Path(__file__).with_name("kumo_stub.lua")


def _run(tmp_path: Path, policy: str, env: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The policy's calls into `kumo`/`proxy`, each as {"fn": name, key: value}."""
    need("lua5.4")
    path = tmp_path / "policy.lua"
    path.write_text(policy)
    done = subprocess.run(
        ["lua5.4", str(STUB), str(path)], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    assert done.returncode == 0, done.stderr
    calls = []
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "call":
            fn, *pairs = rest.split(" ")
            calls.append({"fn": fn, **dict(p.split("=", 1) for p in pairs)})
        else:
            calls.append({"fn": kind, "ok": rest})
    return calls


def _luac(tmp_path: Path, text: str) -> None:
    need("luac5.4")
    path = tmp_path / "check.lua"
    path.write_text(text)
    checked = subprocess.run(["luac5.4", "-p", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("cloud", ["aws", "hcloud"])
def test_init_lua_compiles(tmp_path, cloud):
    _luac(tmp_path, kumo.mta_policy("mta.example.com", PROXIES[cloud]))


def test_http_listener_is_loopback_8000_only_and_trusts_loopback_only(tmp_path):
    calls = _run(tmp_path, kumo.mta_policy("mta.example.com", PROXIES["hcloud"]))
    listeners = [c for c in calls if c["fn"] == "kumo.start_http_listener"]
    assert len(listeners) == 1
    assert listeners[0]["listen"] == "127.0.0.1:8000"
    assert {k: v for k, v in listeners[0].items() if k.startswith("trusted_hosts")} == {"trusted_hosts.1": "127.0.0.1"}
    assert not [c for c in calls if "esmtp" in c["fn"]]


def test_request_body_limit_matches_nginx(tmp_path):
    calls = _run(tmp_path, kumo.mta_policy("mta.example.com", PROXIES["aws"]))
    (listener,) = [c for c in calls if c["fn"] == "kumo.start_http_listener"]
    nginx_limit = re.search(r"client_max_body_size (\d+)m;", nginx.site("mta.example.com"))
    assert int(listener["request_body_limit"]) == int(nginx_limit.group(1)) * 1024 * 1024


def test_spool_and_logs_live_where_the_volume_is_mounted(tmp_path):
    calls = _run(tmp_path, kumo.mta_policy("mta.example.com", PROXIES["aws"]))
    spools = {c["name"]: c["path"] for c in calls if c["fn"] == "kumo.define_spool"}
    assert spools == {"data": "/var/spool/kumomta/data", "meta": "/var/spool/kumomta/meta"}
    assert [c["log_dir"] for c in calls if c["fn"] == "kumo.configure_local_logs"] == ["/var/log/kumomta"]


@pytest.mark.parametrize("cloud", ["aws", "hcloud"])
def test_every_queue_sends_through_the_proxies_by_ip_literal(tmp_path, cloud):
    calls = _run(tmp_path, kumo.mta_policy("mta.example.com", PROXIES[cloud]))
    sources = {c["name"]: c for c in calls if c["fn"] == "kumo.make_egress_source"}
    assert set(sources) == {p.fqdn for p in PROXIES[cloud]}
    for proxy in PROXIES[cloud]:
        source = sources[proxy.fqdn]
        host, port = source["socks5_proxy_server"].rsplit(":", 1)
        ipaddress.ip_address(host)  # a literal, never a name
        assert (host, int(port)) == (proxy.connect_ip, layout.SOCKS_PORT)
        assert source["socks5_proxy_source_address"] == proxy.source_ip
        assert source["ehlo_domain"] == proxy.fqdn
    assert ("unknown-pool", "false") in [(c["fn"], c.get("ok")) for c in calls]
    assert ("unknown-source", "false") in [(c["fn"], c.get("ok")) for c in calls]


def test_each_source_looks_up_only_mx_addresses_of_its_own_family(tmp_path):
    """kumod fails a delivery whose SOCKS5 source address and MX address differ in family ("socks5_proxy_source_address
    ... address family does not match the destination address family", KumoMTA crates/kumod/src/egress_source.rs),
    and by default resolves A and AAAA (`Ipv4AndIpv6`, docs/reference/kumo/make_egress_path/ip_lookup_strategy.md).
    So an IPv4 source asks for A records only, and with `ipv6` each proxy adds an IPv6 source asking for AAAA only."""
    v4 = _run(tmp_path, kumo.mta_policy("mta.example.com", PROXIES["hcloud"]))
    paths = [c for c in v4 if c["fn"] == "kumo.make_egress_path"]
    assert [p["ip_lookup_strategy"] for p in paths] == ["Ipv4Only", "Ipv4Only"]
    dual = ProxyTarget("proxy.example.com", "10.0.1.10", "198.51.100.20", "2001:db8:1::1")
    calls = _run(tmp_path, kumo.mta_policy("mta.example.com", [dual]))
    sources = {c["name"]: c["socks5_proxy_source_address"] for c in calls if c["fn"] == "kumo.make_egress_source"}
    assert sources == {"proxy.example.com": "198.51.100.20", "proxy.example.com-ipv6": "2001:db8:1::1"}
    strategies = [c["ip_lookup_strategy"] for c in calls if c["fn"] == "kumo.make_egress_path"]
    assert strategies == ["Ipv4Only", "Ipv6Only"]  # sources in name order


def test_log_segments_close_within_a_minute(tmp_path):
    """configure_local_logs closes a segment at max_segment_size (1 GB) unless max_segment_duration is set
    (KumoMTA crates/kumod/src/logging/files.rs; docs/reference/kumo/configure_local_logs/max_segment_duration.md)."""
    calls = _run(tmp_path, kumo.mta_policy("mta.example.com", PROXIES["aws"]))
    (logs,) = [c for c in calls if c["fn"] == "kumo.configure_local_logs"]
    assert logs["max_segment_duration"] == "60s"


def test_ipv6_proxy_addresses_are_bracketed(tmp_path):
    proxy = ProxyTarget("proxy.example.com", "2001:db8::10", "2001:db8::20")
    calls = _run(tmp_path, kumo.mta_policy("mta.example.com", [proxy]))
    (source,) = [c for c in calls if c["fn"] == "kumo.make_egress_source"]
    assert source["socks5_proxy_server"] == "[2001:db8::10]:5000"


@pytest.mark.parametrize("bad", [[], [ProxyTarget("proxy.example.com", "proxy.example.com", "10.0.0.1")]])
def test_an_mta_without_proxy_ip_literals_is_refused(bad):
    with pytest.raises(ValueError):
        kumo.mta_policy("mta.example.com", bad)


def test_proxy_listens_on_the_discovered_address_without_metrics_by_default(tmp_path):
    policy = kumo.proxy_policy("proxy.example.com", settings("hcloud"))
    _luac(tmp_path, policy)
    calls = _run(tmp_path, policy, {"KUMOPROXY_LISTEN_IP": "10.0.1.10"})
    assert [c["fn"] for c in calls] == ["proxy.start_proxy_listener"]
    assert calls[0]["listen"] == "10.0.1.10:5000"


def test_proxy_refuses_to_start_without_an_address(tmp_path):
    need("lua5.4")
    path = tmp_path / "policy.lua"
    path.write_text(kumo.proxy_policy("proxy.example.com", settings("aws")))
    done = subprocess.run(["lua5.4", str(STUB), str(path)], capture_output=True, text=True, check=False, env={})
    assert done.returncode != 0
    assert "KUMOPROXY_LISTEN_IP" in done.stderr


def test_proxy_metrics_only_for_the_monitoring_networks_and_only_the_metrics(tmp_path):
    """KumoMTA's default ACL (assets/acls/default.toml) gives `trusted_hosts` the admin API too
    (`http_listener/*/api/admin`, GET/DELETE/POST), so the monitoring networks must not be trusted
    hosts: an ACL grants them GET on /metrics and /metrics.json and nothing else
    (docs/reference/kumo.aaa/load_acl_map.md; identity `MachineSet` in
    crates/kumo-server-common/src/authn_authz.rs)."""
    s = settings("aws", monitoringCidrs=["10.9.0.0/24", "10.8.0.0/24"], proxyMetricsPort=9200)
    policy = kumo.proxy_policy("proxy.example.com", s)
    _luac(tmp_path, policy)
    calls = _run(tmp_path, policy, {"KUMOPROXY_LISTEN_IP": "10.42.2.10"})
    (metrics,) = [c for c in calls if c["fn"] == "proxy.start_http_listener"]
    assert metrics == {"fn": "proxy.start_http_listener", "listen": "0.0.0.0:9200"}  # no trusted_hosts
    (acl,) = [c["ok"] for c in calls if c["fn"] == "acl"]
    rules = tomllib.loads(acl.replace("\\n", "\n"))["acl"]
    assert rules == {
        f"http_listener/*/{path}": [
            {"allow": True, "privileges": ["GET"], "identity": {"MachineSet": ["10.9.0.0/24", "10.8.0.0/24"]}}
        ]
        for path in ("metrics", "metrics.json")
    }
    assert [c["ok"] for c in calls if c["fn"] == "acl-answers"] == ["http_listener/*/metrics"]


def test_proxy_without_monitoring_has_no_http_listener_and_no_acl(tmp_path):
    calls = _run(tmp_path, kumo.proxy_policy("proxy.example.com", settings("aws")), {"KUMOPROXY_LISTEN_IP": "10.0.0.5"})
    assert {c["fn"] for c in calls} == {"proxy.start_proxy_listener"}


def test_proxy_unit_runs_the_packaged_binary_hardened():
    unit = kumo.proxy_unit()
    assert f"ExecStart=/opt/kumomta/sbin/proxy-server --proxy-config {layout.PROXY_POLICY}\n" in unit
    for line in ("Restart=on-failure", "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "CapabilityBoundingSet=\n", "MemoryDenyWriteExecute=yes", f"EnvironmentFile={layout.PROXY_ENV}"):  # fmt: skip
        assert line in unit


def test_proxy_unit_gives_the_node_id_a_writable_home():
    """proxy-server writes its node id at start to /opt/kumomta/etc/.nodeid unless KUMO_NODE_ID_PATH says
    otherwise; under ProtectSystem=strict that write fails with a read-only file system, which nodeid.rs does not
    tolerate (only PermissionDenied and NotFound), so it panics and the unit restarts forever
    (KumoMTA crates/kumo-server-common/src/nodeid.rs). StateDirectory= is writable under ProtectSystem=strict
    and DynamicUser= (systemd.exec(5)), and %S is /var/lib for a system unit."""
    unit = kumo.proxy_unit()
    assert "StateDirectory=kumoproxy\n" in unit
    assert "Environment=KUMO_NODE_ID_PATH=%S/kumoproxy/nodeid\n" in unit
    assert "ReadWritePaths" not in unit  # nothing else is writable


def test_systemd_rates_the_proxy_unit_exposure_at_most_2(tmp_path):
    need("systemd-analyze")
    units = tmp_path / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / "kumoproxy.service").write_text(kumo.proxy_unit())
    rated = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", f"--root={tmp_path}", "kumoproxy.service"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    level = re.search(r"Overall exposure level for kumoproxy.service: ([\d.]+)", rated.stdout)
    assert level is not None, rated.stderr
    assert float(level.group(1)) <= 2.0
    assert rated.returncode == 0
