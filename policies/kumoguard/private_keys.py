"""PEM private keys in property values that are not secrets, however the text around them is wrapped.

A key is known by its armour, `-----BEGIN <label> PRIVATE KEY-----` (RFC 7468 section 2: `PRIVATE
KEY` for PKCS#8, `ENCRYPTED PRIVATE KEY`, OpenSSL's `RSA`/`EC`/`DSA PRIVATE KEY`, OpenSSH's `OPENSSH
PRIVATE KEY`, PGP's `PRIVATE KEY BLOCK`), found anywhere in a string: in a cloud-config, a JSON or
YAML document or a shell here-document, whatever the line endings or indentation. Text is also read
through what user data and documents wrap it in, a few layers deep: base64 (`user_data_base64`,
cloud-init's `encoding: b64`, MIME parts), gzip under base64 (AWS user data, cloud-init's `gz+b64`)
and string escapes (`\\n`, `\\/`, `\\u002d`, `\\x2d` in JSON, YAML or shell). Public keys (`PUBLIC KEY`, `ssh-ed25519
AAAA...`) and certificates carry other labels and are not keys.
"""

import base64
import binascii
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .secrets import SecretText

_ARMOUR = re.compile(r"-{4,5}\s*BEGIN\s+((?:[A-Z0-9]+\s+)*?)PRIVATE\s+KEY(?:\s+BLOCK)?\s*-{4,5}", re.IGNORECASE)
_LEGACY_ENCRYPTED = re.compile(r"\s*Proc-Type:\s*4,\s*ENCRYPTED", re.IGNORECASE)
_KINDS = {"": "PKCS#8", "ENCRYPTED": "encrypted PKCS#8", "OPENSSH": "OpenSSH"}
_TOKEN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")  # base64 of a whole armour line is at least 40 characters
_LINE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_BASE64_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_WRAPPED_LINE = 16  # base64 wrapped at 64 (PEM, openssl) or 76 (MIME, `base64`) columns, or anything from 16
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|(.))", re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "/": "/", '"': '"', "'": "'", "\\": "\\"}
LAYERS = 4  # AWS user data (base64, gzip) holding a cloud-init gz+b64 write_files entry (base64, gzip) is four
MAX_BYTES = 1 << 20  # what one gzip stream may inflate to; EC2 takes 16 KB of user data, Hetzner 32 KiB


@dataclass(frozen=True)
class Key:
    """One private key's armour, and what it was found under (outermost first)."""

    kind: str  # "RSA", "OpenSSH", "PKCS#8", "encrypted PKCS#8"...
    armour: str  # "-----BEGIN RSA PRIVATE KEY-----"
    under: tuple[str, ...] = ()  # ("base64", "gzip")

    def __str__(self) -> str:
        found = f", found after decoding {' then '.join(self.under)}" if self.under else ""
        return f"{self.kind} private key ({self.armour}{found})"


def find(text: str) -> list[Key]:
    """Every distinct private key in the text, each with the fewest layers it was found under."""
    found: dict[tuple[str, str], Key] = {}
    _scan(text, (), found)
    return sorted(found.values(), key=lambda key: len(key.under))


def in_plain_values(value: Any, path: str = "") -> Iterator[tuple[str, list[Key]]]:
    """(property path, keys) for each string that is not a secret (see `secrets`) and holds a key."""
    if isinstance(value, SecretText):
        return
    if isinstance(value, str):
        keys = find(value)
        if keys:
            yield path, keys
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from in_plain_values(item, f"{path}.{name}" if path else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from in_plain_values(item, f"{path}[{index}]")


def _scan(text: str, under: tuple[str, ...], found: dict) -> None:
    for match in _ARMOUR.finditer(text):
        label = " ".join(match[1].split()).upper()
        kind = _KINDS.get(label, label)
        if _LEGACY_ENCRYPTED.match(text, match.end()):
            kind = f"encrypted {kind}"
        found.setdefault((kind, " ".join(match[0].split())), Key(kind, " ".join(match[0].split()), under))
    if len(under) >= LAYERS:
        return
    unescaped = _ESCAPE.sub(_unescape, text) if "\\" in text else text
    if unescaped != text:
        _scan(unescaped, (*under, "string escapes"), found)
    for blob in _base64_blobs(text):
        data = _base64(blob)
        if data is None:
            continue
        layers = (*under, "base64")
        if data[:2] == b"\x1f\x8b":
            data = _gunzip(data)
            layers = (*layers, "gzip")
        if data:
            _scan(data.decode("utf-8", "replace"), layers, found)


def _unescape(match: re.Match) -> str:
    code = match[1] or match[2]
    return chr(int(code, 16)) if code else _ESCAPES.get(match[3], match[0])


def _base64_blobs(text: str) -> Iterator[str]:
    """Base64 runs on one line, and base64 wrapped over lines: from the run a line ends with (after
    `content: ` or a quote), through whole lines of at least 16, to the run the next line starts with."""
    yield from (match[0] for match in _TOKEN.finditer(text))
    run: list[str] = []
    for line in [*text.splitlines(), ""]:
        line = line.strip()
        if run and len(line) >= _WRAPPED_LINE and _LINE.fullmatch(line):
            run.append(line)
            continue
        if run:
            run.append(line[: len(line) - len(line.lstrip(_BASE64_CHARACTERS))])
            if len(run) > 2 or run[-1]:  # it spans lines; a run on one line is a token already
                yield "".join(run)
        head = line[len(line.rstrip(_BASE64_CHARACTERS)) :]
        run = [head] if len(head) >= _WRAPPED_LINE and _LINE.fullmatch(head) else []


def _base64(blob: str) -> bytes | None:
    blob = blob.rstrip("=")
    if len(blob) % 4 == 1:
        blob = blob[:-1]
    try:
        return base64.b64decode(blob + "=" * (-len(blob) % 4))
    except binascii.Error:
        return None


def _gunzip(data: bytes) -> bytes | None:
    """As much as the stream inflates to (a truncated one too), at most MAX_BYTES."""
    try:
        return zlib.decompressobj(wbits=zlib.MAX_WBITS | 16).decompress(data, MAX_BYTES)
    except zlib.error:
        return None
