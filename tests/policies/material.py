"""Key material for the private-key tests, made by the real tools, and the corpus tags that place it.

Keys come from `openssl` (PEM and PKCS#8, the formats pulumi-tls's `privateKeyPem` and
`privateKeyPemPkcs8` hold) and `ssh-keygen` (`privateKeyOpenssh`, and an SSH host key as cloud-init's
`ssh_keys` takes it), made once per test session; none is committed. corpus.yaml places them with tags:

- `!key rsa` one of KINDS, as the tool writes it;
- `!secret {of: X}` X as the engine sends a secret: `{"4dabf181...": "1b470612...", "value": X}`;
- `!encode {as: [gzip, base64], of: X}` X's text through each step in turn (STEPS);
- `!json X`, `!yaml X`, `!cloud-config X` X written as that document.
"""

import base64
import functools
import gzip
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kumoguard.secrets import SECRET_SIG, SIG_KEY

PASSPHRASE = "corpus"
# kind -> the shell command that prints it, run in a folder holding `rsa8.pem` (PKCS#8 RSA 2048) and `ssh`, `ssh.pub`
_COMMANDS = {
    "rsa": "openssl pkey -in rsa8.pem -traditional",
    "rsa-encrypted": f"openssl pkey -in rsa8.pem -traditional -aes128 -passout pass:{PASSPHRASE}",
    "pkcs8": "cat rsa8.pem",
    "pkcs8-encrypted": f"openssl pkcs8 -topk8 -in rsa8.pem -passout pass:{PASSPHRASE}",
    "ec": "openssl ecparam -name prime256v1 -genkey -noout",
    "dsa": "openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 -out dsa.param && "
    "openssl genpkey -paramfile dsa.param | openssl pkey -traditional",
    "openssh": "cat ssh",
    "public": "openssl pkey -in rsa8.pem -pubout",
    "rsa-public": "openssl rsa -in rsa8.pem -RSAPublicKey_out",
    "ssh-public": "cat ssh.pub",
    "certificate": "openssl req -x509 -key rsa8.pem -subj /CN=mta.example.com -days 1",
    # The DKIM TXT record of the key (RFC 6376 section 3.6.1): p= is the base64 of the DER public key.
    "dkim-txt": "printf 'v=DKIM1; k=rsa; p=%s' \"$(openssl pkey -in rsa8.pem -pubout -outform DER | base64 -w0)\"",
}
KINDS = tuple(_COMMANDS)
PRIVATE = ("rsa", "rsa-encrypted", "pkcs8", "pkcs8-encrypted", "ec", "dsa", "openssh")
ARMOUR = {
    "rsa": "-----BEGIN RSA PRIVATE KEY-----",
    "rsa-encrypted": "-----BEGIN RSA PRIVATE KEY-----",
    "pkcs8": "-----BEGIN PRIVATE KEY-----",
    "pkcs8-encrypted": "-----BEGIN ENCRYPTED PRIVATE KEY-----",
    "ec": "-----BEGIN EC PRIVATE KEY-----",
    "dsa": "-----BEGIN DSA PRIVATE KEY-----",
    "openssh": "-----BEGIN OPENSSH PRIVATE KEY-----",
}


def need_tools() -> None:
    for tool in ("openssl", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install the package that .ci/run lists)")


@functools.cache
def _made() -> dict[str, str]:
    need_tools()
    with tempfile.TemporaryDirectory() as folder:
        run = functools.partial(subprocess.run, cwd=folder, check=True, capture_output=True, text=True)
        run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa8.pem"])
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mta.example.com", "-f", "ssh"])
        return {kind: run(["sh", "-c", command]).stdout for kind, command in _COMMANDS.items()}


def key(kind: str) -> str:
    """A key (or public key, or certificate) of the given kind, as the tool wrote it."""
    return _made()[kind]


def secret(value: Any) -> dict:
    """A value as the engine sends a secret to an analyzer."""
    return {SIG_KEY: SECRET_SIG, "value": value}


# Corpus tags: they load as markers, made into values only when a test asks (so collection needs no tools).


@dataclass(frozen=True)
class Tagged:
    tag: str
    value: Any


def encode(steps: list[str], value: bytes) -> bytes:
    """The bytes through each of STEPS in turn."""
    for step in steps:
        value = STEPS[step](value)
    return value


STEPS = {
    "gzip": gzip.compress,
    "base64": base64.b64encode,  # one line, as `user_data_base64` and cloud-init's `b64` take it
    "base64-lines": base64.encodebytes,  # wrapped at 76 columns, as MIME parts and `base64` write it
    "crlf": lambda data: data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
    "indent": lambda data: b"".join(b"      " + line for line in data.splitlines(keepends=True)),
    "json-escapes": lambda data: json.dumps(data.decode())[1:-1].encode(),
}


def realise(value: Any) -> Any:
    """Corpus data with its tags made into values: keys, secret maps, encoded text, documents."""
    if isinstance(value, dict):
        return {k: realise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [realise(v) for v in value]
    if not isinstance(value, Tagged):
        return value
    if value.tag == "!key":
        return key(value.value)
    if value.tag == "!secret":
        return secret(realise(value.value["of"]))
    if value.tag == "!encode":
        return encode(value.value["as"], realise(value.value["of"]).encode()).decode()
    if value.tag == "!json":
        return json.dumps(realise(value.value))
    if value.tag == "!yaml":
        return yaml.safe_dump(realise(value.value), sort_keys=False)
    return "#cloud-config\n" + yaml.safe_dump(realise(value.value), sort_keys=False)


class CorpusLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads the corpus tags."""


def _construct(loader: yaml.SafeLoader, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.MappingNode):
        return Tagged(node.tag, loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Tagged(node.tag, loader.construct_sequence(node, deep=True))
    return Tagged(node.tag, loader.construct_scalar(node))


for _tag in ("!key", "!secret", "!encode", "!json", "!yaml", "!cloud-config"):
    CorpusLoader.add_constructor(_tag, _construct)


def load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=CorpusLoader)
