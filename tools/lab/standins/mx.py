"""The test MX: an SMTP server (RFC 5321) that accepts every message and records who sent it.

Each message becomes one journal line, when its DATA ends: the peer address the connection came
from (the sending IP recipient MX hosts see), the EHLO name it gave, that transaction's envelope
(kumod sends several messages over one connection, each after its own MAIL FROM), and each DKIM
signature's result as a receiver gets it: dkimpy, fetching the key record from RESOLVER (the lab's
DNS as the world sees it).
`python -m tools.lab.standins.mx ADDRESS PORT JOURNAL RESOLVER`
"""

import socketserver
import sys

import dkim
import dns.exception
import dns.resolver

from tools.lab.standins.common import Journal, stop_on_term

MAX_LINES = 100_000
MAX_BYTES = 1 << 20


class Session(socketserver.StreamRequestHandler):
    timeout = 30
    journal: Journal
    resolver: dns.resolver.Resolver

    def reply(self, text: str) -> None:
        self.wfile.write(f"{text}\r\n".encode())

    def handle(self) -> None:
        seen = {"peer": self.client_address[0], "ehlo": None, "mail_from": None, "rcpt": [], "bytes": 0}
        self.reply("220 mx.lab.example ESMTP kumolab test MX")
        for _ in range(MAX_LINES):
            line = self.rfile.readline(4096).decode(errors="replace").rstrip("\r\n")
            if not line:
                break
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                seen["ehlo"] = arg.strip()
                self.reply("250-mx.lab.example\r\n250 8BITMIME" if verb == "EHLO" else "250 mx.lab.example")
            elif verb == "MAIL":  # a new transaction (RFC 5321 3.3): its own sender and recipients
                seen.update(mail_from=arg.partition(":")[2].strip(), rcpt=[], bytes=0)
                self.reply("250 OK")
            elif verb == "RCPT":
                seen["rcpt"].append(arg.partition(":")[2].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go ahead")
                message = self._data()
                seen["bytes"] = len(message)
                self.journal.write(event="message", dkim=signatures(message, self.resolver), **seen)
                self.reply("250 OK queued")
            elif verb == "RSET":
                seen.update(mail_from=None, rcpt=[], bytes=0)
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                break
            else:
                self.reply("250 OK" if verb == "NOOP" else "502 not here")
        self.journal.write(event="session", peer=seen["peer"], ehlo=seen["ehlo"])

    def _data(self) -> bytes:
        """The message as sent, dot-unstuffed (RFC 5321 4.5.2), up to MAX_BYTES."""
        lines = []
        for _ in range(MAX_LINES):
            line = self.rfile.readline(65536)
            if line in (b".\r\n", b".\n", b""):
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        return b"".join(lines)[:MAX_BYTES]


def signatures(message: bytes, resolver: dns.resolver.Resolver) -> list[str]:
    """`d=<domain> s=<selector>: pass|fail` for each DKIM-Signature, as a receiver verifies it."""

    def txt(name: bytes, timeout: float = 5) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        except dns.exception.DNSException:
            return None
        return b"".join(answer[0].strings)

    try:
        verifier = dkim.DKIM(message)
    except dkim.DKIMException as err:  # not a message dkimpy can read: every signature on it fails
        return [f"unreadable message: fail ({err})"]
    out = []
    for n, header in enumerate(h for name, h in verifier.headers if name.lower() == b"dkim-signature"):
        tags = dict(part.strip().split("=", 1) for part in header.decode(errors="replace").split(";") if "=" in part)
        try:
            ok = verifier.verify(idx=n, dnsfunc=txt)
        except dkim.DKIMException:
            ok = False
        out.append(f"d={''.join(tags.get('d', '').split())} s={''.join(tags.get('s', '').split())}: "
                   f"{'pass' if ok else 'fail'}")  # fmt: skip
    return out


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main(address: str, port: str, journal: str, resolver: str) -> None:
    stop_on_term()
    Session.journal = Journal(journal)
    Session.resolver = dns.resolver.Resolver(configure=False)
    Session.resolver.nameservers = [resolver]
    with Server((address, int(port)), Session) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
