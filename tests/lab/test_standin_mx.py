"""The test MX's DKIM verdicts, which the lab's delivery check trusts: dkimpy as a receiver runs it, the key record
fetched from a resolver (here a server on loopback holding the record the stack would publish)."""

import dkim
import dns.resolver
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.mail import dkim_record
from tests.dnsserver import Server
from tools.lab.standins.mx import signatures

MESSAGE = b"From: lab@yourdomain.com\r\nTo: x@lab.example\r\nSubject: kumolab\r\n\r\nsent through mta\r\n"


def _key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, dkim_record("rsa", public.decode())


def _verdicts(message: bytes, record: str) -> list[str]:
    strings = " ".join(f'"{record[i : i + 255]}"' for i in range(0, len(record), 255))
    server = Server({("s1._domainkey.yourdomain.com", "TXT"): [strings]})
    try:
        resolver = dns.resolver.Resolver(configure=False)
        host, port = server.address.split(":")
        resolver.nameservers, resolver.port = [host], int(port)
        return signatures(message, resolver)
    finally:
        server.close()


def test_a_signed_message_passes_and_a_changed_one_fails():
    private, record = _key()
    signed = dkim.sign(MESSAGE, b"s1", b"yourdomain.com", private, include_headers=[b"from", b"subject"]) + MESSAGE
    assert _verdicts(signed, record) == ["d=yourdomain.com s=s1: pass"]
    assert _verdicts(signed.replace(b"sent through", b"changed on"), record) == ["d=yourdomain.com s=s1: fail"]
    assert _verdicts(signed, _key()[1]) == ["d=yourdomain.com s=s1: fail"]  # another key at the selector


def test_an_unsigned_message_has_no_verdict():
    assert _verdicts(MESSAGE, _key()[1]) == []


def test_a_message_dkimpy_cannot_read_counts_as_failed():
    assert _verdicts(b"not a message", _key()[1])[0].startswith("unreadable message: fail")
