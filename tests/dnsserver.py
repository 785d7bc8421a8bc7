"""A DNS server on loopback for tests: answers from a table, as a zone would (dnspython builds the packets)."""

import socket
import threading

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class Server:
    """A DNS server on 127.0.0.1: `records[(name, type)]` as zone-file text; other names NXDOMAIN."""

    def __init__(self, records: dict[tuple[str, str], list[str]]):
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            if (name, kind) in self.records:
                reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, *self.records[name, kind]))
            elif not any(n == name for n, _ in self.records):
                reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()
