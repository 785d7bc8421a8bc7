"""Drift on Hetzner: the real `hcloud` client against recorded API responses served on loopback."""

import json

import pytest

from tests.verify import stacks
from tests.verify.hetzner_api import RECORDED, TOKEN, HetznerApi, as_api
from tools.verify import drift
from tools.verify.checks import Status, run_all

OUTPUTS = json.loads((RECORDED / "hcloud_outputs.json").read_text())


@pytest.fixture
def api(monkeypatch):
    with HetznerApi(stacks.settings("prod-hcloud")) as server:
        monkeypatch.setenv("HCLOUD_TOKEN", TOKEN)
        monkeypatch.setenv("HCLOUD_ENDPOINT", server.endpoint)
        yield server


def audit(**overrides):
    stack = stacks.stack(OUTPUTS, "prod-hcloud", region=None, **overrides)
    return {r.check: r for r in run_all(drift.tasks(stack, timeout=5))}


def test_the_recorded_project_has_no_drift_and_was_found_by_label(api):
    rows = audit()
    assert sorted(rows) == [
        "mta firewall matches the matrix",
        "mta: sending IP 192.0.2.29 attached",
        "proxy firewall matches the matrix",
        "proxy: sending IP 198.51.100.76 attached",
    ]
    assert {r.status for r in rows.values()} == {Status.PASS}, list(rows.values())
    (selector,) = [q["label_selector"] for path, q in api.requests if path == "/v1/firewalls"]
    assert selector == ["kumomta-stack=prod-hcloud,kumomta-role in (mta,proxy)"]
    assert sorted(q["ip"][0] for path, q in api.requests if path == "/v1/primary_ips") == [
        "192.0.2.29",
        "198.51.100.76",
    ]


def test_every_missing_and_extra_address_is_reported(api):
    mta, proxy = api.firewalls
    public_8000 = {"direction": "in", "protocol": "tcp", "port": "8000", "source_ips": ["0.0.0.0/0", "::/0"]}
    mta["rules"].append(as_api(public_8000))
    (smtp,) = [r for r in proxy["rules"] if r["port"] == "25"]
    proxy["rules"].remove(smtp)
    (dns,) = [r for r in proxy["rules"] if r["port"] == "53" and r["protocol"] == "udp"]
    dns["destination_ips"] = ["185.12.64.1/32"]
    rows = audit()
    assert rows["mta firewall matches the matrix"].details == (
        "extra: 8000/tcp in from 0.0.0.0/0 on mta",
        "extra: 8000/tcp in from ::/0 on mta",
    )
    assert rows["proxy firewall matches the matrix"].details == (
        "missing: 25/tcp out to 0.0.0.0/0 on proxy",
        "missing: 53/udp out to 185.12.64.2/32 on proxy",
    )


def test_a_5000_rule_on_the_cloud_firewall_is_extra_since_socks_runs_on_the_private_network(api):
    api.firewalls[1]["rules"].append(
        as_api({"direction": "in", "protocol": "tcp", "port": "5000", "source_ips": ["10.43.1.0/24"]})
    )
    assert audit()["proxy firewall matches the matrix"].details == ("extra: 5000/tcp in from 10.43.1.0/24 on proxy",)


def test_an_unassigned_or_moved_primary_ip_fails(api):
    mta_ip, proxy_ip = api.primary_ips
    mta_ip["assignee_id"] = mta_ip["assignee_type"] = None
    proxy_ip["assignee_id"] = 1234
    rows = audit()
    assert (
        rows["mta: sending IP 192.0.2.29 attached"].reason == "primary IP 60211754 (192.0.2.29) is assigned to nothing"
    )
    assert rows["proxy: sending IP 198.51.100.76 attached"].reason == (
        "primary IP 60211755 is assigned to server 1234, not server 24659054"
    )


def test_a_missing_firewall_and_a_rejected_token_are_failures(api, monkeypatch):
    del api.firewalls[0]
    assert audit()["mta firewall matches the matrix"].reason == (
        "no firewall with labels kumomta-stack=prod-hcloud, kumomta-role=mta (deleted, or relabelled?)"
    )
    monkeypatch.setenv("HCLOUD_TOKEN", "revoked")
    rows = audit()
    assert {r.status for r in rows.values()} == {Status.FAIL}
    assert all(r.reason == "Hetzner API: unauthorized: unable to authenticate" for r in rows.values())


def test_without_a_token_the_audit_is_skipped_and_says_how_to_enable_it(api, monkeypatch):
    monkeypatch.delenv("HCLOUD_TOKEN")
    rows = audit()
    assert {r.status for r in rows.values()} == {Status.SKIPPED}
    assert all("HCLOUD_TOKEN is not set" in r.reason for r in rows.values())
    assert api.requests == []
