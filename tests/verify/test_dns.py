"""`make verify`'s sending records: what a DNS server answers, held against the stack (issue 14, "Verification").

The server on loopback serves exactly the TXT records the program registers (tools/lab/stack.txt_records), so a
pass means the stack's own records satisfy the checks; each failure case changes one record as a mistake would.
"""

import json
import socket

import dns.reversename
import pytest

from tests.dnsserver import Server
from tests.verify.stacks import program, settings
from tools.lab.stack import txt_records
from tools.mockrun import Run
from tools.verify import dns as checks
from tools.verify.checks import Status, run_all
from tools.verify.stack import Stack, hosts


def published(run: Run) -> dict[tuple[str, str], list[str]]:
    """The program's TXT records, and each host's A and PTR records as the stack makes them."""
    records: dict[tuple[str, str], list[str]] = {}
    for name, strings in txt_records(run):
        records.setdefault((name.lower(), "TXT"), []).append(" ".join(json.dumps(s) for s in strings))
    for host in run.outputs["hosts"].values():
        records[host["fqdn"], "A"] = [host["publicIp"]]
        reverse = dns.reversename.from_address(host["publicIp"]).to_text().rstrip(".")
        records[reverse, "PTR"] = [host["fqdn"] + "."]
    return records


def verified(run: Run, records: dict, stack_file: str = "prod", **overrides) -> dict[str, tuple[Status, str, tuple]]:
    stack = Stack(stack_file, settings(stack_file, **overrides), hosts(run.outputs), None, run.outputs["dkim"])
    server = Server(records)
    try:
        rows = run_all(checks.tasks(stack, server.address, timeout=2.0))
    finally:
        server.close()
    return {r.check: (r.status, r.reason, r.details) for r in rows}


@pytest.mark.parametrize("stack_file", ["prod", "prod-hcloud"])
def test_the_records_the_stack_registers_pass_every_check(stack_file):
    run = program(stack_file)
    rows = verified(run, published(run), stack_file)
    proxy = run.outputs["hosts"]["proxy"]["publicIp"]
    assert {check: status for check, (status, _, _) in rows.items()} == {
        "DKIM s202611._domainkey.yourdomain.com": Status.PASS,
        "SPF yourdomain.com": Status.PASS,
        "DMARC _dmarc.yourdomain.com": Status.PASS,
        "SPF proxy.yourdomain.com": Status.PASS,
        f"PTR {proxy}": Status.PASS,
    }


def test_a_missing_or_another_key_fails_dkim():
    run = program()
    records = published(run)
    records.pop(("s202611._domainkey.yourdomain.com", "TXT"))
    assert verified(run, records)["DKIM s202611._domainkey.yourdomain.com"][:2] == (
        Status.FAIL,
        "no DKIM key record: receivers can't verify what this selector signs",
    )
    records["s202611._domainkey.yourdomain.com", "TXT"] = ['"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"']
    assert verified(run, records)["DKIM s202611._domainkey.yourdomain.com"][:2] == (
        Status.FAIL,
        "the published key is not the stack's: signatures would fail (dkim=fail)",
    )


def test_spf_must_name_exactly_the_sending_addresses_and_end_in_minus_all():
    run = program()
    proxy = run.outputs["hosts"]["proxy"]["publicIp"]
    records = published(run)
    records["yourdomain.com", "TXT"] = ['"v=spf1 ip4:198.51.100.0/24 include:_spf.example.net ~all"']
    status, _, details = verified(run, records)["SPF yourdomain.com"]
    assert status == Status.FAIL
    assert details == (
        f"missing {proxy}: mail from it fails SPF",
        "extra 198.51.100.0/24: it may send as this name",
        "extra term include:_spf.example.net",
        "extra term ~all",
        "no -all: receivers accept mail from anywhere else",
    )
    records["yourdomain.com", "TXT"] = [f'"v=spf1 ip4:{proxy} -all"', '"v=spf1 -all"']
    assert verified(run, records)["SPF yourdomain.com"][:2] == (
        Status.FAIL,
        "2 SPF records, a permanent error (RFC 7208 4.5)",
    )


def test_configured_includes_are_expected_in_the_domains_spf():
    run = program(spf={"include": ["include:_spf.example.net"]})
    rows = verified(run, published(run), spf={"include": ["include:_spf.example.net"]})
    assert rows["SPF yourdomain.com"][0] == Status.PASS
    assert rows["SPF proxy.yourdomain.com"][0] == Status.PASS  # a HELO name has no includes


def test_a_missing_or_different_dmarc_fails():
    run = program()
    records = published(run)
    records["_dmarc.yourdomain.com", "TXT"] = ['"v=DMARC1; p=reject"']
    assert verified(run, records)["DMARC _dmarc.yourdomain.com"][0] == Status.FAIL
    del records["_dmarc.yourdomain.com", "TXT"]
    assert verified(run, records)["DMARC _dmarc.yourdomain.com"][:2] == (Status.FAIL, "no DMARC record")


def test_a_dmarc_published_elsewhere_only_has_to_exist():
    run = program(dmarc={"publish": False})
    records = published(program())
    records["_dmarc.yourdomain.com", "TXT"] = ['"v=DMARC1; p=quarantine"']
    assert verified(run, records, dmarc={"publish": False})["DMARC _dmarc.yourdomain.com"][:2] == (
        Status.PASS,
        "p=quarantine",
    )


def test_ptr_must_name_the_proxy_and_the_name_lead_back():
    run = program()
    proxy = run.outputs["hosts"]["proxy"]["publicIp"]
    reverse = dns.reversename.from_address(proxy).to_text().rstrip(".")
    records = published(run)
    records[reverse, "PTR"] = ["ec2-203-0-113-28.compute.amazonaws.com."]
    assert verified(run, records)[f"PTR {proxy}"][:2] == (
        Status.FAIL,
        "PTR is ec2-203-0-113-28.compute.amazonaws.com, not proxy.yourdomain.com",
    )
    records = published(run)
    records["proxy.yourdomain.com", "A"] = ["192.0.2.1"]
    assert verified(run, records)[f"PTR {proxy}"][:2] == (
        Status.FAIL,
        f"proxy.yourdomain.com resolves to 192.0.2.1, not {proxy}",
    )


def test_a_resolver_that_does_not_answer_is_a_failed_row_naming_it():
    run = program()
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))  # bound, never answers
    try:
        stack = Stack("prod", settings(), hosts(run.outputs), None, run.outputs["dkim"])
        rows = run_all(checks.tasks(stack, f"127.0.0.1:{quiet.getsockname()[1]}", timeout=0.3))
    finally:
        quiet.close()
    assert rows and all(r.status == Status.FAIL and r.reason.startswith("no answer: ") for r in rows)


def test_verify_runs_the_dns_group_from_the_command_line(tmp_path, capsys):
    from tools.verify.__main__ import main

    run = program()
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"hosts": run.outputs["hosts"], "dkim": run.outputs["dkim"]}))
    server = Server(published(run))
    try:
        code = main(["--stack", "prod", "--outputs", str(outputs), "--only", "dns", "--resolver", server.address])
    finally:
        server.close()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SPF yourdomain.com" in out and "DKIM s202611._domainkey.yourdomain.com" in out
