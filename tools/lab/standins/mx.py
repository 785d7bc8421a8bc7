"""The test MX: an SMTP server (RFC 5321) that accepts every message and records who sent it.

Each message becomes one journal line, when its DATA ends: the peer address the connection came
from (the sending IP recipient MX hosts see), the EHLO name it gave, and that transaction's
envelope (kumod sends several messages over one connection, each after its own MAIL FROM).
`python -m tools.lab.standins.mx ADDRESS PORT JOURNAL`
"""

import socketserver
import sys

from tools.lab.standins.common import Journal, stop_on_term

MAX_LINES = 100_000


class Session(socketserver.StreamRequestHandler):
    timeout = 30
    journal: Journal

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
                seen["bytes"] = self._data()
                self.journal.write(event="message", **seen)
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

    def _data(self) -> int:
        size = 0
        for _ in range(MAX_LINES):
            line = self.rfile.readline(65536)
            if line in (b".\r\n", b".\n", b""):
                break
            size += len(line)
        return size


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main(address: str, port: str, journal: str) -> None:
    stop_on_term()
    Session.journal = Journal(journal)
    with Server((address, int(port)), Session) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
