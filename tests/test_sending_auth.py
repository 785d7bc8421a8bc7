"""Sending authentication: DKIM keys kept only as secrets, and the DKIM, SPF and DMARC records the stack publishes.

The decisive check uses a real DKIM implementation (dkimpy): a message signed with the key the stack generated
verifies against the TXT record the stack publishes for it, once the record's strings are put back together
as a resolver would.
"""

import base64
import json

import dkim
import pulumi
import pytest
from cryptography.hazmat.primitives import serialization

from components.bootstrap import kumo
from tests.bootstrap.test_kumo import _luac, _run
from tests.bootstrap.test_wiring import _bundle
from tests.stacks import run
from tools.lab.stack import txt_records

SECRET = "4dabf18193072939515e22adb298388d"
MESSAGE = (
    b"From: PING8 <news@yourdomain.com>\r\nTo: someone@example.org\r\nSubject: hello\r\n"
    b"Date: Thu, 26 Nov 2026 18:00:00 +0000\r\nMessage-ID: <1@yourdomain.com>\r\n\r\nHello.\r\n"
)


def _txt(result, fqdn: str) -> str:
    """The record as a resolver hands it over: the character-strings of the published value, joined
    (tools/lab/stack.txt_records reads both providers' forms, as the lab's DNS serves them)."""
    if result.stack == "prod":
        records = result.of_type("aws:route53/record:Record")
        (record,) = [r for r in records if r.inputs["name"] == fqdn and r.inputs["type"] == "TXT"]
        assert record.inputs["allowOverwrite"] is False  # an existing record set is an error, never replaced
    (parts,) = [strings for name, strings in txt_records(result) if name == fqdn]
    assert all(len(part) <= 255 for part in parts), "RFC 1035 3.3: a character-string holds 255 octets at most"
    return "".join(parts)


def _private_key(result, selector: str) -> bytes:
    """The key as the stack made it (what the MTA gets), in the form dkimpy takes: PEM for RSA, the base64 of the
    32-byte seed for Ed25519."""
    keys = result.of_type("tls:index/privateKey:PrivateKey")
    (key,) = [r for r in keys if r.name == f"dkim-{selector}-yourdomain.com"]
    pem = key.state["privateKeyPem"].encode()
    if key.inputs["algorithm"] == "RSA":
        return pem
    raw = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw)


@pytest.mark.parametrize("stack", ["prod", "prod-hcloud"])
def test_a_message_signed_with_the_stacks_key_verifies_against_the_record_it_publishes(stack):
    result = run(stack, dkim={"selectors": [{"name": "s202611"}], "ed25519": True})
    for selector, algorithm in (("s202611", b"rsa-sha256"), ("s202611-ed25519", b"ed25519-sha256")):
        record = _txt(result, f"{selector}._domainkey.yourdomain.com")
        assert record.startswith(f"v=DKIM1; k={'rsa' if algorithm == b'rsa-sha256' else 'ed25519'}; p=")
        signed = dkim.sign(
            MESSAGE,
            selector.encode(),
            b"yourdomain.com",
            _private_key(result, selector),
            include_headers=[b"From", b"To", b"Subject", b"Date"],
            signature_algorithm=algorithm,
        )
        lookups = []

        def dns(name, timeout=5, lookups=lookups, record=record, selector=selector):
            lookups.append(name)
            return record.encode() if name == f"{selector}._domainkey.yourdomain.com.".encode() else None

        assert dkim.verify(signed + MESSAGE, dnsfunc=dns), selector
        assert lookups == [f"{selector}._domainkey.yourdomain.com.".encode()]
        tampered = (signed + MESSAGE).replace(b"Hello.", b"Hullo.")
        assert not dkim.verify(tampered, dnsfunc=dns)


@pytest.mark.parametrize("stack", ["prod", "prod-hcloud"])
def test_spf_lists_exactly_the_sending_addresses_and_fails_the_rest(stack):
    result = run(stack, proxyHosts=["proxy", "proxy2"])
    sending = sorted(h["publicIp"] for h in result.outputs["hosts"].values() if h["role"] == "proxy")
    assert _txt(result, "yourdomain.com") == " ".join(["v=spf1", *(f"ip4:{a}" for a in sending), "-all"])
    for label in ("proxy", "proxy2"):
        own = result.outputs["hosts"][label]["publicIp"]
        assert _txt(result, f"{label}.yourdomain.com") == f"v=spf1 ip4:{own} -all"  # the HELO name (RFC 7208 2.3)
    mta = result.outputs["hosts"]["mta"]["publicIp"]
    assert mta not in _txt(result, "yourdomain.com")  # the MTA never sends to the internet itself


def test_spf_on_ipv6_and_with_other_senders_included():
    result = run(ipv6=True, spf={"include": ["include:_spf.google.com"]})
    record = _txt(result, "yourdomain.com")
    (ipv6,) = [r.state["ipv6Addresses"][0] for r in result.of_type("aws:ec2/networkInterface:NetworkInterface")
               if r.name == "proxy-eni"]  # fmt: skip
    assert f"ip6:{ipv6}" in record and record.endswith(" include:_spf.google.com -all")


@pytest.mark.parametrize(
    ("dmarc", "record"),
    [({}, "v=DMARC1; p=none"), ({"policy": "reject", "rua": "mailto:d@yourdomain.com"},
                                "v=DMARC1; p=reject; rua=mailto:d@yourdomain.com")],
)  # fmt: skip
def test_dmarc_says_the_configured_policy(dmarc, record):
    assert _txt(run("prod-hcloud", dmarc=dmarc), "_dmarc.yourdomain.com") == record


def test_each_record_can_be_left_to_records_managed_elsewhere():
    result = run(dkim={"publish": False}, spf={"publish": False}, dmarc={"publish": False})
    assert not [r for r in result.of_type("aws:route53/record:Record") if r.inputs["type"] == "TXT"]
    assert len(result.outputs["dkim"]) == 1  # the record to publish by hand is still an output


@pytest.mark.parametrize("stack", ["prod", "prod-hcloud"])
def test_the_private_key_is_only_ever_a_secret(stack):
    result = run(stack, dkim={"ed25519": True})
    pems = [r.state["privateKeyPem"] for r in result.of_type("tls:index/privateKey:PrivateKey") if "dkim" in r.name]
    assert len(pems) == 2

    def plain(value) -> list[str]:
        if isinstance(value, dict):
            return [] if SECRET in value else [s for v in value.values() for s in plain(v)]
        if isinstance(value, list):
            return [s for v in value for s in plain(v)]
        return [value] if isinstance(value, str) else []

    for reg in result.registrations:
        for text in plain(reg.inputs):
            assert "PRIVATE KEY" not in text, reg.name
    assert "PRIVATE KEY" not in json.dumps(result.outputs["dkim"])


def test_aws_keeps_each_key_in_a_secure_string_the_bundle_only_names():
    result = run()
    parameter = result.by_name("dkim-yourdomain.com-s202611")
    assert parameter.inputs["name"] == "/kumomta/prod/mta/secrets/dkim/yourdomain.com/s202611"
    assert parameter.inputs["type"] == "SecureString"
    assert parameter.inputs["keyId"] == result.by_name("secrets-key").state["arn"]
    bundle = _bundle(result, "mta")
    (entry,) = [f for f in bundle["files"] if f["path"] == "/opt/kumomta/etc/dkim/yourdomain.com/s202611.key"]
    assert entry["parameter"] == parameter.inputs["name"] and "content" not in entry
    assert (entry["mode"], entry["owner"], entry["group"]) == ("0600", "kumod", "kumod")
    assert "/opt/kumomta/etc/dkim/" in bundle["owns"]  # a retired key is removed from the host


def test_hetzner_pushes_the_key_inside_the_secret_bundle():
    result = run("prod-hcloud")
    stdin = result.by_name("mta-sync").inputs["stdin"]
    assert SECRET in stdin
    files = {f["path"]: f for f in json.loads(stdin["value"])["files"]}
    key = files["/opt/kumomta/etc/dkim/yourdomain.com/s202611.key"]
    assert key["content"].startswith("-----BEGIN RSA PRIVATE KEY-----") and key["mode"] == "0600"


def test_a_new_selector_is_published_at_once_and_signs_from_its_date(tmp_path):
    """Rotation: both records exist while the new key waits for `signFrom`, so receivers can fetch it first."""
    selectors = [{"name": "s202611"}, {"name": "s209901", "signFrom": "2099-01-01T00:00:00Z"}]
    result = run(dkim={"selectors": selectors})
    for name in ("s202611", "s209901"):
        assert _txt(result, f"{name}._domainkey.yourdomain.com").startswith("v=DKIM1; k=rsa; p=")
    policy = next(f["content"] for f in _bundle(result, "mta")["files"] if f["path"].endswith("init.lua"))
    assert (
        "{ selector = 's209901', algorithm = 'rsa', key = '/opt/kumomta/etc/dkim/yourdomain.com/s209901.key', from = 4070908800 }"
        in policy
    )
    signed = [c for c in _run(tmp_path, policy) if c["fn"] == "kumo.dkim.rsa_sha256_signer"]
    assert [c["selector"] for c in signed] == ["s202611"]  # 2099 has not come


@pytest.mark.parametrize(
    "sign_from",
    ["2099-01-01T00:00:00Z", "2099-01-01", "2099-01-01 00:00:00 +0000 UTC", "2099-01-01 02:00:00 +0200 +0200"],
)
def test_sign_from_is_the_same_moment_however_the_stack_file_wrote_it(sign_from):
    """An unquoted YAML date reaches the program as the CLI prints a Go time (`2099-01-01 00:00:00 +0000 UTC`,
    measured with `pulumi config --json`, CLI v3.274.1); it must sign from the same second as the ISO form."""
    result = run(dkim={"selectors": [{"name": "s202611"}, {"name": "s209901", "signFrom": sign_from}]})
    policy = next(f["content"] for f in _bundle(result, "mta")["files"] if f["path"].endswith("init.lua"))
    assert "key = '/opt/kumomta/etc/dkim/yourdomain.com/s209901.key', from = 4070908800 }" in policy


def test_kumod_signs_every_injected_message_and_counts_what_it_cannot_sign(tmp_path):
    """The `http_message_generated` event signs (KumoMTA docs/reference/events/http_message_generated.md) with the
    RFC 6376 5.4.1 header set, over-signed; a domain without a key goes out unsigned with the `dkim` meta saying
    so, which every log record carries (configure_local_logs `meta`)."""
    result = run(dkim={"ed25519": True})
    policy = next(f["content"] for f in _bundle(result, "mta")["files"] if f["path"].endswith("init.lua"))
    _luac(tmp_path, policy)
    calls = _run(tmp_path, policy)
    rsa, ed = (next(c for c in calls if c["fn"] == f"kumo.dkim.{fn}") for fn in ("rsa_sha256_signer", "ed25519_signer"))
    assert (rsa["domain"], rsa["selector"], rsa["key"]) == (
        "yourdomain.com", "kumomta", "/opt/kumomta/etc/dkim/yourdomain.com/kumomta.key"
    )  # fmt: skip
    assert ed["selector"] == "kumomta-ed25519" and rsa["over_sign"] == "true"
    assert [rsa[f"headers.{i}"] for i in range(1, 20)] == list(kumo.DKIM_HEADERS)
    assert [c["ok"] for c in calls if c["fn"] == "signed"] == [
        "yourdomain.com kumomta",
        "yourdomain.com kumomta-ed25519",
    ]
    assert [c["ok"] for c in calls if c["fn"] == "meta"] == [
        "dkim=kumomta,kumomta-ed25519",
        "dkim=unsigned: no key for elsewhere.example",
    ]
    (logs,) = [c for c in calls if c["fn"] == "kumo.configure_local_logs"]
    assert logs["meta.1"] == "dkim"


def test_the_dkim_records_are_stack_outputs():
    outputs = run().outputs["dkim"]
    assert list(outputs) == ["s202611._domainkey.yourdomain.com"]
    assert outputs["s202611._domainkey.yourdomain.com"].startswith("v=DKIM1; k=rsa; p=MII")


def test_signing_domains_must_be_in_the_hetzner_zone():
    with pytest.raises(pulumi.RunError, match=r"kumomta:dkim: signing domain other\.example is not in the DNS zone"):
        run("prod-hcloud", dkim={"domains": ["other.example"]})
