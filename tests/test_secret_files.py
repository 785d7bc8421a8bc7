"""The guide's "never expose secret-bearing env files", for every secret the stack makes: the injection token and
each DKIM private key live in exactly one place per cloud, always marked secret, and on the host in one file of
their own, readable by its service alone, under a directory no web server serves.

Every registered input is searched, through the base64, gzip and JSON that user data and bundles are wrapped in,
so a secret that slipped into a unit, an env file, a script, user data or a plain parameter is found wherever it is.
"""

import base64
import binascii
import gzip
import json
import re

import pytest

from components.bootstrap import layout
from tests.stacks import run

SECRET = "4dabf18193072939515e22adb298388d"  # Pulumi's signature key of a secret value
# The services that read each secret file, and nothing else (Nginx's master process runs as root).
OWNERS = {layout.NGINX_SECRETS: "root", layout.DKIM_DIR: "kumod"}


def _unwrapped(text: str, depth: int = 0):
    """The text and what it decodes to: base64, gzip, JSON (up to four layers, as user data wraps them)."""
    yield text
    if depth == 4:
        return
    candidate = text.removeprefix("gz:")
    if re.fullmatch(r"[A-Za-z0-9+/=\s]{16,}", candidate):
        try:
            raw = base64.b64decode(candidate, validate=False)
            raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            yield from _unwrapped(raw.decode(), depth + 1)
        except (binascii.Error, UnicodeDecodeError, OSError, EOFError):
            pass
    if text[:1] in "{[":
        try:
            document = json.loads(text)
        except ValueError:
            return
        yield from _strings(document, depth + 1)


def _strings(value, depth: int = 0, secret: bool = False):
    """(string, under a secret mark) for every string in an input."""
    if isinstance(value, dict):
        marked = secret or SECRET in value
        for item in value.values():
            yield from _strings(item, depth, marked)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, depth, secret)
    elif isinstance(value, str):
        for text in _unwrapped(value, depth):
            yield text, secret


def _secrets(result) -> dict[str, str]:
    """What must never be exposed, by name: the generated token and each DKIM private key (its base64 body line,
    which survives any re-wrapping of the PEM)."""
    (password,) = result.of_type("random:index/randomPassword:RandomPassword")
    found = {"injection token": password.state["result"]}
    for key in result.of_type("tls:index/privateKey:PrivateKey"):
        if key.name.startswith("dkim-"):
            pem = key.state["privateKeyPem"]
            pem = pem["value"] if isinstance(pem, dict) else pem
            found[key.name] = pem.splitlines()[1]
    return found


def _carriers(result, secret: str) -> dict[str, bool]:
    """Each input holding the secret, as `resource.input`, and whether it was marked secret there."""
    out = {}
    for reg in result.registrations:
        if reg.type in ("random:index/randomPassword:RandomPassword", "tls:index/privateKey:PrivateKey"):
            continue
        for key, value in reg.inputs.items():
            hits = [marked for text, marked in _strings(value, secret=False) if secret in text]
            if hits:
                out[f"{reg.name}.{key}"] = all(hits)
    return out


def test_aws_each_secret_is_one_secure_string_and_nothing_else_holds_it():
    result = run("prod")
    parameters = {p.name: p for p in result.of_type("aws:ssm/parameter:Parameter")}
    for what, secret in _secrets(result).items():
        carriers = _carriers(result, secret)
        assert len(carriers) == 1, f"{what} is held by {sorted(carriers)}"
        ((where, marked),) = carriers.items()
        name, prop = where.rsplit(".", 1)
        assert (prop, marked) == ("value", True), f"{what}: {carriers}"
        parameter = parameters[name].inputs
        assert parameter["type"] == "SecureString"
        assert parameter["keyId"] == result.by_name("secrets-key").state["arn"]
        assert parameter["name"].startswith("/kumomta/prod/mta/secrets/")


def test_hetzner_each_secret_travels_only_in_the_secret_push_to_each_mta():
    result = run("prod-hcloud")
    mtas = {"mta-sync.stdin"}  # prod-hcloud has one MTA
    for what, secret in _secrets(result).items():
        carriers = _carriers(result, secret)
        assert set(carriers) == mtas, f"{what} is held by {sorted(carriers)}"
        assert all(carriers.values()), f"{what} is not marked secret in {carriers}"


@pytest.mark.parametrize("stack", ["prod", "prod-hcloud"])
def test_on_the_host_each_secret_is_one_file_only_its_service_reads(stack):
    """The bundle as the MTA applies it: the token only in Nginx's bearer map, each key only in its own file under
    the DKIM directory; both mode 0600, owned by the service that reads them. No unit, env file or script holds one."""
    result = run(stack)
    if stack == "prod":
        value = result.by_name("mta-bundle").inputs["insecureValue"]
        bundle = json.loads(gzip.decompress(base64.b64decode(value[3:])) if value.startswith("gz:") else value)
    else:
        bundle = json.loads(result.by_name("mta-sync").inputs["stdin"]["value"])
    secret_dirs = tuple(f"{d}/" for d in OWNERS)
    for entry in bundle["files"]:
        holds = [what for what, secret in _secrets(result).items() if secret in (entry.get("content") or "")]
        if entry["path"].startswith(secret_dirs):
            (owner,) = [who for d, who in OWNERS.items() if entry["path"].startswith(f"{d}/")]
            assert (entry["mode"], entry["owner"], entry["group"]) == ("0600", owner, owner)
            if stack == "prod":
                # AWS: the bundle parameter names the SecureString and its hash; the agent fetches the content.
                assert entry.get("content") is None and entry["parameter"].startswith("/kumomta/prod/mta/secrets/")
        else:
            assert holds == [], f"{entry['path']} holds {holds}"
    token_map = [e for e in bundle["files"] if e["path"] == layout.TOKEN_MAP]
    assert len(token_map) == 1
    keys = [e for e in bundle["files"] if e["path"].startswith(f"{layout.DKIM_DIR}/")]
    assert len(keys) == len(_secrets(result)) - 1


def test_neither_secret_directory_is_under_a_web_root():
    """Nginx serves files only from the ACME webroot (tests/bootstrap/test_nginx_exposure.py proves it on the
    live server); the secrets are nowhere under it."""
    for directory in OWNERS:
        assert not directory.startswith(layout.ACME_ROOT)
        assert not layout.ACME_ROOT.startswith(directory)
