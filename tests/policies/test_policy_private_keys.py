"""No private key in plain text: what counts as key material, how it may be wrapped, and how the pack
tells a Pulumi secret from plain text. Keys are made by openssl and ssh-keygen (material.py).

Sources: PEM labels, RFC 7468 section 2 and OpenSSH's PROTOCOL.key (`-----BEGIN OPENSSH PRIVATE KEY-----`);
legacy encrypted PEM, RFC 1421 section 4.6.1.1 (`Proc-Type: 4,ENCRYPTED`); cloud-init's write_files
encodings `b64` and `gz+b64` (cloudinit/config/cc_write_files.py, `canonicalize_extraction`) and
`cloud-init devel make-mime` (base64 MIME parts); AWS user data gzip then base64 (pulumi-aws Instance
`userDataBase64`: "gzip-encoded user data must be base64-encoded and passed via this argument"); secrets
on the wire, pulumi/pulumi sdk/go/common/resource/plugin/analyzer_plugin.go (`Analyze` and `AnalyzeStack`
marshal with `KeepSecrets: true`) and pulumi_policy/deserialize.py (`SPECIAL_SECRET_SIG`).
"""

import base64
import gzip
import json
import subprocess
import time

import pulumi_policy.deserialize
import pulumi_policy.policy
import pytest
import yaml
from kumoguard import model, private_keys, secrets
from kumoguard.secrets import SecretText
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from tests.policies import material
from tests.policies.kit import assert_no_violation, assert_violation, node, resource, stack, violations
from tools.policy_run import Pack, Resource

PUBLIC = [kind for kind in material.KINDS if kind not in material.PRIVATE]
KIND_NAMES = {
    "rsa": "RSA",
    "rsa-encrypted": "encrypted RSA",
    "pkcs8": "PKCS#8",
    "pkcs8-encrypted": "encrypted PKCS#8",
    "ec": "EC",
    "dsa": "DSA",
    "openssh": "OpenSSH",
}


def found(text: str) -> list[tuple[str, str, tuple]]:
    return [(key.kind, key.armour, key.under) for key in private_keys.find(text)]


@pytest.mark.parametrize("kind", material.PRIVATE)
def test_every_kind_of_private_key_the_tools_write_is_found_by_its_armour(kind):
    assert found(material.key(kind)) == [(KIND_NAMES[kind], material.ARMOUR[kind], ())]


@pytest.mark.parametrize("kind", PUBLIC)
def test_public_keys_certificates_and_dkim_records_are_not_keys(kind):
    text = material.key(kind)
    assert "-----BEGIN" in text or text.startswith(("ssh-ed25519 ", "v=DKIM1;"))
    assert found(text) == []
    assert found(base64.b64encode(gzip.compress(text.encode())).decode()) == []


WRAPPINGS = [
    (["crlf"], ()),
    (["indent"], ()),
    (["crlf", "indent"], ()),
    (["json-escapes"], ()),
    (["base64"], ("base64",)),
    (["base64-lines"], ("base64",)),
    (["gzip", "base64"], ("base64", "gzip")),
    (["gzip", "base64-lines"], ("base64", "gzip")),
    (["gzip", "base64-lines", "json-escapes"], ("string escapes", "base64", "gzip")),
    (["gzip", "base64", "gzip", "base64"], ("base64", "gzip", "base64", "gzip")),
]


@pytest.mark.parametrize(("steps", "under"), WRAPPINGS, ids=["+".join(steps) for steps, _ in WRAPPINGS])
def test_a_key_is_found_through_line_endings_indentation_escapes_base64_and_gzip(steps, under):
    text = material.encode(steps, material.key("openssh").encode()).decode()
    assert found(text) == [("OpenSSH", material.ARMOUR["openssh"], under)]


@pytest.mark.parametrize(
    "document",
    [
        lambda key: json.dumps({"domains": [{"name": "example.com", "key": key}]}),
        lambda key: yaml.safe_dump({"domains": [{"name": "example.com", "key": key}]}),
        lambda key: yaml.safe_dump({"key": key}, default_style='"'),
        lambda key: json.dumps({"doc": json.dumps({"key": key})}),  # JSON in JSON, escaped twice
        lambda key: f"#!/bin/sh\ncat > /etc/k <<'EOF'\n{key}EOF\nchmod 600 /etc/k\n",
        lambda key: "#cloud-config\n" + yaml.safe_dump({"write_files": [{"path": "/k", "content": key}]}),
        lambda key: json.dumps({"userData": base64.b64encode(gzip.compress(key.encode())).decode()}),
    ],
    ids=["json", "yaml", "yaml-double-quoted", "json-in-json", "shell-heredoc", "cloud-config", "json-gzip-base64"],
)
def test_a_key_is_found_inside_a_larger_document(document):
    (key,) = private_keys.find(document(material.key("ec")))
    assert (key.kind, key.armour) == ("EC", "-----BEGIN EC PRIVATE KEY-----")


def test_a_key_is_found_in_the_mime_user_data_cloud_init_writes(tmp_path):
    """`cloud-init devel make-mime` base64-encodes each part; AWS then carries it gzipped and base64-encoded."""
    config = tmp_path / "config.yaml"
    config.write_text("#cloud-config\n" + yaml.safe_dump({"ssh_keys": {"ed25519_private": material.key("openssh")}}))
    mime = subprocess.run(
        ["cloud-init", "devel", "make-mime", "-a", f"{config}:cloud-config"], capture_output=True, text=True, check=True
    ).stdout
    assert "Content-Transfer-Encoding: base64" in mime and "PRIVATE KEY" not in mime
    assert found(mime) == [("OpenSSH", material.ARMOUR["openssh"], ("base64",))]
    aws = base64.b64encode(gzip.compress(mime.encode())).decode()
    assert found(aws) == [("OpenSSH", material.ARMOUR["openssh"], ("base64", "gzip", "base64"))]


def test_what_cloud_init_writes_for_a_gz_b64_entry_is_the_key_found_under_base64_and_gzip():
    """The corpus's `encoding: gz+b64` content, decoded by cloud-init's own write_files code, is the key."""
    content = material.encode(["gzip", "base64"], material.key("rsa").encode()).decode()
    script = (
        "import sys\nfrom cloudinit.config.cc_write_files import canonicalize_extraction, extract_contents\n"
        "sys.stdout.buffer.write(extract_contents(sys.stdin.read(), canonicalize_extraction('gz+b64')))"
    )
    written = subprocess.run(
        ["/usr/bin/python3", "-c", script], input=content.encode(), capture_output=True, check=True
    )
    assert written.stdout.decode() == material.key("rsa")
    assert found(content) == [("RSA", material.ARMOUR["rsa"], ("base64", "gzip"))]


@pytest.mark.parametrize("fill", [b"\0", b"QUFB"], ids=["zeros", "base64-looking"])
def test_a_gzip_bomb_inflates_no_further_than_the_bound(fill):
    """64 MiB inflated from 90 KB of text: read up to MAX_BYTES (1 MiB) and no further."""
    bomb = base64.b64encode(gzip.compress(fill * ((64 << 20) // len(fill)))).decode()
    start = time.monotonic()
    assert private_keys.find(bomb) == []
    assert time.monotonic() - start < 3


def test_every_key_in_a_value_is_named_once_with_the_fewest_layers():
    text = material.key("rsa") + material.key("rsa") + base64.b64encode(material.key("rsa").encode()).decode()
    text += material.key("dsa")
    assert found(text) == [("RSA", material.ARMOUR["rsa"], ()), ("DSA", material.ARMOUR["dsa"], ())]


# Secrets: what the engine sends, what the SDK makes of it, and what the pack keeps.


def test_the_sdk_alone_hands_a_policy_a_secret_as_plain_text():
    """Why secrets.keep_marks exists: pulumi-policy 1.21 unwraps the engine's secret map and keeps no mark."""
    props = pulumi_policy.deserialize.deserialize_properties({"key": material.secret("x")})
    assert props == {"key": "x"} and not isinstance(props["key"], SecretText)


def test_kept_marks_make_every_string_under_a_secret_secret_text_and_leave_the_rest_alone():
    wire = {
        "plain": "a",
        "token": material.secret("t"),
        "env": material.secret({"vars": {"KEY": "k", "N": 3}, "list": ["x"]}),
        "list": ["p", material.secret("s")],
        "asset": {secrets.SIG_KEY: "c44067f5952c0a294b673a41bacd8c17", "text": "hello"},
    }
    props = secrets.deserialize(wire)
    assert props["env"] == {"vars": {"KEY": "k", "N": 3}, "list": ["x"]}
    secret = [props["token"], props["env"]["vars"]["KEY"], props["env"]["list"][0], props["list"][1]]
    assert all(isinstance(value, SecretText) for value in secret)
    assert not any(isinstance(value, SecretText) for value in (props["plain"], props["list"][0]))
    assert props["asset"].text == "hello"  # assets still read by the SDK


def test_a_secret_preview_does_not_know_is_still_unknown_to_the_other_policies():
    props = unknown_checking_proxy(secrets.deserialize({"cidrIpv4": material.secret(UNKNOWN_STRING_VALUE)}))
    assert model.plain(props) == {"cidrIpv4": model.UNKNOWN}


def test_keep_marks_wraps_the_sdks_own_function_and_nothing_else(monkeypatch):
    monkeypatch.setattr(pulumi_policy.policy, "deserialize_properties", lambda props, proxy_secrets=False: props)
    with pytest.raises(RuntimeError, match="not the SDK's own"):
        secrets.keep_marks()


# The policies, as the SDK calls them.

KEY_PARAM = "aws:ssm/parameter:Parameter"
STACK = "pulumi:pulumi:Stack"


def test_a_plain_key_in_an_input_is_named_with_its_resource_path_kind_and_fix():
    args = resource(KEY_PARAM, "dkim", insecureValue=material.key("pkcs8-encrypted"))
    assert_violation(
        "no-plain-private-keys",
        args,
        "dkim input insecureValue: holds PEM private key material in plain text: encrypted PKCS#8 private key "
        "(-----BEGIN ENCRYPTED PRIVATE KEY-----)",
        "Fix: make it a secret: wrap the value in pulumi.Output.secret(...)",
    )


def test_the_same_key_as_a_secret_input_is_not_a_violation():
    assert_no_violation("no-plain-private-keys", resource(KEY_PARAM, "dkim", value=material.secret(material.key("ec"))))


def test_one_message_per_property_naming_each_key_in_it():
    args = resource(KEY_PARAM, "p", a=[material.key("rsa") + material.key("openssh")], b={"c": material.key("ec")})
    messages = violations("no-plain-private-keys", args)
    assert len(messages) == 2
    assert "p input a[0]: " in messages[0] and "RSA private key" in messages[0] and "OpenSSH" in messages[0]
    assert messages[1].startswith("p input b.c: holds PEM private key material in plain text: EC private key")


def test_a_plain_stack_output_is_named_with_its_export_and_the_fix():
    args = stack(node(STACK, "kumomta-infra-prod", hosts={"mta": {"hostKey": material.key("openssh")}}))
    assert_violation(
        "no-plain-private-keys-in-stack-outputs",
        args,
        "kumomta-infra-prod (the stack) output hosts.mta.hostKey: holds PEM private key material in plain text: "
        "OpenSSH private key",
        'Fix: make it a secret: pulumi.export("hosts", pulumi.Output.secret(...)), or additional_secret_outputs',
    )


def test_only_the_stack_resources_outputs_are_stack_outputs():
    """A tls PrivateKey's own outputs are the provider's to mark (they are secret); its inputs hold no key."""
    tls = node("tls:index/privateKey:PrivateKey", "dkim", privateKeyPem=material.key("rsa"))
    exported = node(STACK, "kumomta-infra-prod", dkimKey=material.secret(material.key("rsa")))
    assert_no_violation("no-plain-private-keys-in-stack-outputs", stack(tls, exported))


def test_over_grpc_a_secret_input_passes_and_the_same_input_plain_is_refused():
    """The engine's wire form through the pack process, where __main__ keeps the marks."""
    key = material.key("openssh")
    user_data = "#cloud-config\n" + yaml.safe_dump({"ssh_keys": {"ed25519_private": key}})
    server = "hcloud:index/server:Server"
    with Pack() as pack:
        refused = pack.analyze(Resource("urn:s", server, "mta", {"userData": user_data}))
        passed = pack.analyze(Resource("urn:s", server, "mta", {"userData": material.secret(user_data)}))
    assert [(v.policy, v.level) for v in refused if v.policy == "no-plain-private-keys"] == [
        ("no-plain-private-keys", "mandatory")
    ]
    assert [v.policy for v in passed if v.level == "mandatory"] == []
