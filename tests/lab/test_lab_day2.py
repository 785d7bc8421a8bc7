"""Day 2 on a running 1+1 stack, on both clouds: `pulumi up` changes the stack, the running hosts follow.

Issue 12 ("Tests"): add a proxy and the MTA delivers through both; remove it and it is no longer used
or allowed; add an admin network and SSH follows; rotate the token and the old one gets 401, the new
one 200; a bad version is refused and the host keeps the old one. Each change is re-planned under the
mocks and delivered through the cloud's own channel (tools/lab/channel.py): SSM and the hosts' real
kumomta-sync.service on AWS, the registered SSH push (real OpenSSH, the host key pinned, the forced
command) on Hetzner, with the real kumomta-apply on the host (tools/lab/day2.py writes each row).
"""

import pytest

from tests.lab.conftest import needs_lab

# The same labs as test_lab_stacks.py: the scenarios run on them once their checks are done (conftest).
pytestmark = [needs_lab, pytest.mark.parametrize("stack_lab", ["aws-prod", "hcloud-prod"], indirect=True)]


@pytest.fixture
def lab(stack_lab):
    return stack_lab


def test_a_new_proxy_boots_gets_its_bundle_and_the_mta_delivers_through_both(lab):
    assert lab.failures("add-proxy") == []
    checks = [r.check for r in lab.group("add-proxy")]
    assert any("proxy2 booted and applied its first bundle" in c for c in checks)
    # A message through each proxy reached the test MX from that proxy's address, the new one included.
    assert "mta -> proxy2 -> test MX within 30s of the delivery" in checks
    assert "mta -> proxy -> test MX within 30s of the delivery" in checks


def test_a_removed_proxy_is_no_longer_used_nor_named_by_any_firewall_rule(lab):
    assert lab.failures("remove-proxy") == []
    checks = [r.check for r in lab.group("remove-proxy")]
    assert "proxy2's namespace is gone (the server was deleted)" in checks
    assert not any("-> proxy2 ->" in c for c in checks)
    assert any(c.endswith("kumod hands no message to proxy2 any more") for c in checks)


def test_an_admin_network_opens_ssh_from_it_on_every_host_and_from_nowhere_else(lab):
    assert lab.failures("admin-ssh") == []
    rows = [r.check for r in lab.group("admin-ssh")]
    hosts = [h.label for h in lab.plan.hosts]
    for host in hosts:
        assert any(c.startswith(f"before: from admin, not reach {host} (public") for c in rows)
        assert any(c.startswith(f"after: from admin, reach {host} (public") for c in rows)
        assert any(c.startswith(f"after: from internet, not reach {host} (public") for c in rows)


def test_a_rotated_token_is_401_for_the_old_and_200_for_the_new(lab):
    assert lab.failures("rotate-token") == []
    assert {r.check for r in lab.group("rotate-token")} >= {
        "mta: GET /metrics with the old token gives 401",
        "mta: GET /metrics with the new token gives 200",
    }


def test_every_running_host_runs_the_version_the_plan_wants_after_each_change(lab):
    hosts = {h.label for h in lab.plan.hosts}
    for group, more in (
        ("add-proxy", {"proxy2"}),
        ("remove-proxy", set()),
        ("admin-ssh", set()),
        ("rotate-token", set()),
    ):
        verified = [r for r in lab.group(group) if r.check.startswith("make verify: ")]
        assert {r.check.split(":")[1].strip() for r in verified} == hosts | more
        assert all(r.status.value == "pass" for r in verified), group


def test_an_nginx_site_that_fails_nginx_t_is_refused_and_the_mta_keeps_its_version_and_token(lab):
    mta = [r for r in lab.group("bad-version") if r.check.startswith(("mta:", "make verify: mta"))]
    assert [f"{r.check}: {r.reason}" for r in mta if r.status.value == "fail"] == []
    assert len(mta) == 6  # refused, applied.json, failed.json, verify says why, the token, the old version again


def test_a_kumoproxy_policy_it_cannot_start_on_is_rolled_back(lab):
    proxy = [r for r in lab.group("bad-version") if r.check.startswith(("proxy:", "make verify: proxy"))]
    assert [f"{r.check}: {r.reason}" for r in proxy if r.status.value == "fail"] == []


def test_after_the_bad_versions_the_stack_delivers_again(lab):
    after = [r for r in lab.group("bad-version") if r.check.startswith("afterwards: ")]
    # The DKIM row is skipped, saying why, where the kumod stand-in runs (it does not sign).
    signing = [r for r in after if "DKIM signatures" in r.check and r.status.value == "skipped" and not lab.lab.sbin]
    assert after and all(r.status.value == "pass" for r in after if r not in signing)
