"""Decrypt `secure:` stack-file values the way Pulumi's passphrase secrets provider does, offline.

The format, from pulumi/pulumi v3.274.1:
- pkg/secrets/passphrase/manager.go, symmetricCrypterFromPhraseAndState: the stack file's
  `encryptionsalt` is `v1:<base64 salt>:<a ciphertext of "pulumi">`; the key is derived from the
  passphrase and that salt, and decrypting the ciphertext to "pulumi" proves the passphrase right.
- sdk/go/common/resource/config/crypt.go, NewSymmetricCrypterFromPassphrase and DecryptValue: the
  key is PBKDF2-HMAC-SHA256 with 1,000,000 iterations and 32 bytes; each value is
  `v1:<base64 12-byte nonce>:<base64 AES-256-GCM ciphertext and tag>`, with no associated data.
- pkg/secrets/passphrase/manager.go, readPassphrase: PULUMI_CONFIG_PASSPHRASE, else the file named
  by PULUMI_CONFIG_PASSPHRASE_FILE (surrounding whitespace trimmed).
"""

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ITERATIONS = 1_000_000
KEY_BYTES = 32


class PassphraseError(Exception):
    """The passphrase is wrong, or a value is not in the passphrase provider's format."""


def passphrase_from_env(env: dict[str, str] | None = None) -> str | None:
    """The passphrase the Pulumi CLI would use without prompting, or None."""
    env = os.environ if env is None else env
    if "PULUMI_CONFIG_PASSPHRASE" in env:
        return env["PULUMI_CONFIG_PASSPHRASE"]
    if env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        name = env["PULUMI_CONFIG_PASSPHRASE_FILE"]
        try:
            return Path(name).read_text().strip()
        except OSError as err:
            raise PassphraseError(
                f"PULUMI_CONFIG_PASSPHRASE_FILE={name} cannot be read ({err.strerror or err})"
            ) from None
        except UnicodeDecodeError:
            raise PassphraseError(f"PULUMI_CONFIG_PASSPHRASE_FILE={name} is not UTF-8 text") from None
    return None


class Decrypter:
    """One stack's key: derived once (about a second of PBKDF2), then used for every value."""

    def __init__(self, passphrase: str, encryption_salt: str):
        version, salt, check = _split(encryption_salt, parts=3, what="encryptionsalt")
        if version != "v1":
            raise PassphraseError(f"encryptionsalt: unknown version {version!r}")
        key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), _b64(salt, "encryptionsalt"), ITERATIONS, KEY_BYTES)
        self._aead = AESGCM(key)
        try:
            proof = self.decrypt(check)
        except PassphraseError:
            proof = None
        if proof != "pulumi":
            raise PassphraseError("incorrect passphrase (PULUMI_CONFIG_PASSPHRASE does not open this stack's secrets)")

    def decrypt(self, value: str) -> str:
        version, nonce, ciphertext = _split(value, parts=3, what="secure value")
        if version != "v1":
            raise PassphraseError(f"secure value: unknown version {version!r}")
        try:
            return self._aead.decrypt(_b64(nonce, "nonce"), _b64(ciphertext, "ciphertext"), None).decode()
        except (InvalidTag, ValueError) as err:  # ValueError: a nonce of the wrong size; UnicodeDecodeError too
            raise PassphraseError("secure value does not decrypt with this passphrase") from err


def _split(value: str, parts: int, what: str) -> list[str]:
    # The encryption salt embeds a whole `v1:nonce:ct` after its salt, so split at most twice.
    found = str(value).split(":", parts - 1)
    if len(found) != parts:
        raise PassphraseError(f"{what}: not `v1:...:...`")
    return found


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as err:
        raise PassphraseError(f"{what}: not base64") from err
