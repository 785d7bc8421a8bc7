"""Both prod stacks and a 3+4 fleet, stood up in namespaces: the guide's checklist on real packets.

Every row here is one probe or one request; a failure names the source, the target, the port and
the guide's rule it breaks. Sources: the guide ("Ports and Firewall", its verification checklist)
and the README's promises, written out in tools/lab/checks.py.
"""

import pytest

from components.matrix import Role
from tests.lab.conftest import STACKS, needs_lab

pytestmark = [needs_lab, pytest.mark.parametrize("stack_lab", list(STACKS), indirect=True)]


@pytest.fixture
def lab(stack_lab):
    return stack_lab


def test_from_every_namespace_to_every_port_only_the_matrix_is_open(lab):
    assert lab.failures("matrix") == []


def test_each_firewall_layer_holds_the_matrix_alone_except_hetzners_private_network(lab):
    assert lab.failures("matrix-cloud") == []
    assert lab.failures("matrix-host") == []


def test_ssh_only_from_admin_when_set_and_on_hetzner_from_where_pulumi_up_pushes(lab):
    ssh = [r for r in lab.group("matrix") if r.check.endswith(" on 22")]
    opened = {r.check.split(",")[0] for r in ssh if ", reach " in r.check}
    settings = lab.plan.settings
    expected = ({"from admin"} if settings.admin_cidrs else set()) | (
        {"from deploy"} if settings.cloud == "hcloud" else set()
    )
    assert opened == expected


def test_kumod_answers_on_the_mtas_loopback_only(lab):
    assert lab.failures("binding") == []


def test_each_host_resolves_through_the_resolvers_it_uses(lab):
    assert lab.failures("resolver") == []


def test_the_bearer_gate_401_without_token_404_for_admin_paths(lab):
    assert lab.failures("https") == []


def test_the_mtas_reach_the_ping8_webhook(lab):
    assert lab.failures("webhook") == []


def test_an_injected_message_leaves_through_each_proxy_from_its_public_address_with_its_fqdn_as_ehlo(lab):
    assert lab.failures("delivery") == []
    mx = [m for m in lab.lab.journal("mx") if m["event"] == "message" and m["time"] <= lab.checked]
    proxies = {(h.public_ip, h.fqdn) for h in lab.plan.hosts if h.role.value == "proxy"}
    assert {(m["peer"], m["ehlo"]) for m in mx} == proxies


def test_make_verify_passes_all_six_lines_of_the_checklist(lab):
    rows = lab.group("verify")
    assert lab.failures("verify") == []
    lines = {
        "POST /api/inject/v1 without a token gives 401",
        "GET /kumomta-verify-no-such-path gives 404",
        "5000/tcp (SOCKS5) not reachable from here",
        "5000/tcp (SOCKS5) reachable",
        "test MX: 25/tcp reachable",
        "PING8 webhook over HTTPS",
    }
    assert all(any(line in r.check for r in rows) for line in lines)


def test_make_verify_finds_the_sending_records_the_stack_registers(lab):
    """Issue 14: the DKIM, SPF and DMARC records the program registers, served by the lab's DNS as the world's,
    match the stack: its key, exactly the proxies' addresses, its DMARC; and each sending IP's PTR leads back."""
    rows = {r.check.removeprefix("make verify: "): r for r in lab.group("verify") if "make verify: " in r.check}
    proxies = lab.plan.of_role(Role.PROXY)
    wanted = {
        *(f"DKIM {name}" for name in lab.plan.outputs["dkim"]),
        "SPF yourdomain.com",
        "DMARC _dmarc.yourdomain.com",
        *(f"SPF {p.fqdn}" for p in proxies),
        *(f"PTR {p.public_ip}" for p in proxies),
    }
    assert wanted <= rows.keys()
    assert [f"{name}: {rows[name].reason}" for name in sorted(wanted) if rows[name].status.value != "pass"] == []


def test_each_mtas_mail_arrives_dkim_signed_when_the_real_kumod_runs(lab):
    """Issue 14: with KumoMTA's kumod (KUMOMTA_SBIN), the test MX verifies every message's signatures (dkimpy)
    against the key records the lab's DNS serves; the stand-in kumod does not sign, and the row says so."""
    rows = [r for r in lab.group("delivery") if "DKIM signatures" in r.check]
    assert len(rows) == len(lab.plan.of_role(Role.MTA))
    if lab.lab.sbin is None:
        assert {(r.status.value, r.reason) for r in rows} == {
            ("skipped", "the kumod stand-in does not sign; KUMOMTA_SBIN runs the real kumod")
        }
    else:
        assert [f"{r.check}: {r.reason}" for r in rows if r.status.value != "pass"] == []
