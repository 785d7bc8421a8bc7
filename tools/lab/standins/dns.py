"""A minimal DNS client (RFC 1035): one question over UDP, the answers of types A and MX."""

import random
import socket
import struct

TYPES = {"A": 1, "MX": 15}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsError(Exception):
    pass


def nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    """The `nameserver` lines of a resolv.conf, in order."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]


def query(server: str, name: str, qtype: str = "A", timeout: float = 1.0) -> list:
    """Addresses (A) or (preference, exchange) pairs (MX); DnsError on no answer or an error code."""
    ident = random.randrange(65536)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", TYPES[qtype], 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, (server, 53))
            reply, _ = s.recvfrom(4096)
        except TimeoutError:
            raise DnsError(f"no answer from {server}:53 within {timeout:g}s") from None
        except OSError as err:
            raise DnsError(f"{server}:53: {err.strerror or err}") from None
    got, flags, _, count = struct.unpack("!HHHH", reply[:8])
    if got != ident:
        raise DnsError(f"{server}: reply to another query")
    rcode = flags & 0xF
    if rcode:
        raise DnsError(f"{server}: {RCODES.get(rcode, rcode)} for {name} {qtype}")
    offset = 12 + len(question) + 4
    answers = []
    for _ in range(count):
        offset = _skip_name(reply, offset)
        rtype, _, _, length = struct.unpack("!HHIH", reply[offset : offset + 10])
        offset += 10
        data = reply[offset : offset + length]
        if rtype == 1:
            answers.append(socket.inet_ntoa(data))
        elif rtype == 15:
            answers.append((struct.unpack("!H", data[:2])[0], _name(reply, offset + 2)))
        offset += length
    if not answers:
        raise DnsError(f"{server}: no {qtype} record for {name}")
    return answers


def resolve(name: str, qtype: str, servers: list[str], timeout: float = 1.0) -> list:
    """Ask each server in turn, as the C library does; the first answer wins."""
    errors = []
    for server in servers:
        try:
            return query(server, name, qtype, timeout)
        except DnsError as err:
            errors.append(str(err))
    raise DnsError("; ".join(errors) or "no nameserver configured")


def _skip_name(data: bytes, offset: int) -> int:
    while data[offset]:
        if data[offset] & 0xC0 == 0xC0:
            return offset + 2
        offset += data[offset] + 1
    return offset + 1


def _name(data: bytes, offset: int) -> str:
    labels = []
    for _ in range(128):  # bounded: a malicious pointer loop ends here
        length = data[offset]
        if length == 0:
            break
        if length & 0xC0 == 0xC0:
            offset = struct.unpack("!H", data[offset : offset + 2])[0] & 0x3FFF
            continue
        labels.append(data[offset + 1 : offset + 1 + length].decode())
        offset += length + 1
    return ".".join(labels)
