"""kumod stand-in: the HTTP listener of the rendered init.lua, and delivery through its SOCKS5 sources.

`POST /api/inject/v1` takes KumoMTA's injection body (envelope_sender, content, recipients) and
answers like kumod (success_count, fail_count); the message is then delivered in the background,
as kumod's queues would: the recipient domain's MX through the host's resolver (/etc/resolv.conf),
then, through the next egress source in turn, SOCKS5 to its `server` with BIND to its
`source_address` and CONNECT to the MX on 25 (the handshake of KumoMTA's
crates/kumod/src/egress_source.rs), then SMTP with its `ehlo_domain`, once (kumod would retry a
transient failure after the queue's retry_interval, 20 minutes by default).

A changed policy reaches the queues as it does in kumod (`Config`): the files under /opt/kumomta/etc
are hashed every 10 seconds and a change starts a new config epoch (KumoMTA
docs/reference/configuration.md, "Config Epoch"), as does POST /api/admin/bump-config-epoch; a
destination's queue re-reads its configuration when its refresh_interval has passed (strategy
Ttl, the default: 1 minute) or when the epoch changed (Epoch), and resolves its pool and sources
through caches that keep each definition for its ttl (60 s by default)
(crates/kumod/src/queue/queue.rs perform_config_refresh, crates/kumod/src/egress_source.rs
EgressPool::resolve). The HTTP listener is the one of its start.

Like kumod behind `trusted_hosts = { '127.0.0.1' }`, every path answers with admin rights (so a
proxy that forwards /api/admin/* shows it), and a request still carrying an Authorization header
is answered 401, as kumod checks a bearer token it was given itself.
`python -m tools.lab.standins.kumod JOURNAL --policy POLICY [--user USER] [--validate]`, kumod's own
options: with --validate it only reads the policy, and exits 1 if the lab can't (as kumod does when
its policy does not load).
"""

import hashlib
import http.server
import json
import os
import socket
import struct
import sys
import threading
import time

from tools.lab.standins import dns, policy
from tools.lab.standins.common import HTTPServer, Journal, stop_on_term
from tools.lab.standins.kumoproxy import read_exact

TIMEOUT = 10.0


def socks5_connect(server: str, source: str, destination: tuple[str, int]) -> socket.socket:
    host, port = policy.split_host_port(server)
    conn = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        conn.sendall(b"\x05\x01\x00")
        if read_exact(conn, 2) != b"\x05\x00":
            raise ConnectionError("the proxy refused no-auth")
        for command, address, port in ((2, source, 0), (1, *destination)):
            conn.sendall(bytes([5, command, 0, 1]) + socket.inet_aton(address) + struct.pack("!H", port))
            answer = read_exact(conn, 10)
            if answer[1] != 0:
                what = "bind" if command == 2 else "connect"
                raise ConnectionError(f"the proxy could not {what} {address}:{port} (SOCKS5 status {answer[1]})")
        return conn
    except BaseException:
        conn.close()
        raise


def smtp(conn: socket.socket, ehlo: str, sender: str, recipient: str, content: str) -> str:
    f = conn.makefile("rwb")

    def expect(code: str) -> str:
        for _ in range(100):
            line = f.readline(4096).decode(errors="replace")
            if not line:
                raise ConnectionError("the MX closed the connection")
            if line[3:4] != "-":
                if not line.startswith(code):
                    raise ConnectionError(f"MX said {line.strip()!r}, expected {code}")
                return line.strip()
        raise ConnectionError("endless reply")

    def send(line: str) -> None:
        f.write(line.encode() + b"\r\n")
        f.flush()

    expect("220")
    for line, code in ((f"EHLO {ehlo}", "250"), (f"MAIL FROM:<{sender}>", "250"), (f"RCPT TO:<{recipient}>", "250")):
        send(line)
        expect(code)
    send("DATA")
    expect("354")
    body = content.replace("\r\n", "\n").replace("\n.", "\n..")
    f.write(body.replace("\n", "\r\n").encode() + b"\r\n.\r\n")
    f.flush()
    final = expect("250")
    send("QUIT")
    return final


class Config:
    """kumod's view of its policy: the config epoch, the pool and source caches, each queue's refresh."""

    POLL = 10.0
    ETC = "/opt/kumomta/etc"

    def __init__(self, policy_path: str, journal: Journal):
        self.path, self.journal = policy_path, journal
        self.lock = threading.Lock()
        self.epoch, self.digest = 0, self._digest()
        self.pool: tuple[list[str], float] | None = None
        self.sources: dict[str, tuple[dict, float]] = {}
        self.queues: dict[str, dict] = {}
        threading.Thread(target=self._monitor, daemon=True).start()

    def _digest(self) -> str:
        digest = hashlib.sha256()
        for base, _, names in sorted(os.walk(self.ETC)):
            for name in sorted(names):
                if name.rpartition(".")[2] in ("lua", "json", "toml", "yaml"):
                    with open(os.path.join(base, name), "rb") as f:
                        digest.update(name.encode() + f.read())
        return digest.hexdigest()

    def _monitor(self) -> None:
        while True:
            time.sleep(self.POLL)
            digest = self._digest()
            if digest != self.digest:
                self.digest = digest
                self.bump("config change detected")

    def bump(self, why: str) -> None:
        with self.lock:
            self.epoch += 1
            self.journal.write(event="epoch", epoch=self.epoch, why=why)

    def source_for(self, domain: str) -> dict:
        """The next source of the domain's queue, its configuration refreshed first when due."""
        now = time.monotonic()
        with self.lock:
            queue = self.queues.get(domain)
            due = queue is None or (
                queue["epoch"] != self.epoch if queue["strategy"] == "Epoch" else now >= queue["refresh_at"]
            )
            if due:
                with open(self.path) as f:
                    text = f.read()
                strategy, interval = policy.queue_refresh(text)
                names = self._pool(text, now)
                if queue is None or queue["names"] != names:
                    queue = {"names": names, "turn": 0}  # a new pool: a new source selector
                queue.update(strategy=strategy, refresh_at=now + interval, epoch=self.epoch, text=text)
                self.queues[domain] = queue
            name = queue["names"][queue["turn"] % len(queue["names"])]
            queue["turn"] += 1
            return self._source(queue["text"], name, now)

    def _pool(self, text: str, now: float) -> list[str]:
        if self.pool is None or now >= self.pool[1]:
            names = sorted(s["name"] for s in policy.kumod_sources(text))
            self.pool = (names, now + policy.cache_ttl(text, "kumo.make_egress_pool"))
        return self.pool[0]

    def _source(self, text: str, name: str, now: float) -> dict:
        cached = self.sources.get(name)
        if cached is None or now >= cached[1]:
            found = {s["name"]: s for s in policy.kumod_sources(text)}
            if name not in found:
                raise policy.PolicyError(f"no egress source named {name}")
            cached = (found[name], now + policy.cache_ttl(text, "kumo.make_egress_source"))
            self.sources[name] = cached
        return cached[0]


def main(journal_path: str, *args: str) -> int:
    stop_on_term()
    policy_path = args[args.index("--policy") + 1]
    try:
        with open(policy_path) as f:
            text = f.read()
        listen = policy.kumod_listen(text)
        sources = policy.kumod_sources(text)
        policy.queue_refresh(text)
        policy.cache_ttl(text, "kumo.make_egress_pool")
        policy.cache_ttl(text, "kumo.make_egress_source")
    except (OSError, policy.PolicyError) as err:
        print(f"kumod (lab stand-in): {policy_path}: {err}", file=sys.stderr)
        return 1
    if "--validate" in args:
        return 0
    journal = Journal(journal_path)
    journal.write(event="start", listen=listen, sources=sources)
    config = Config(policy_path, journal)

    def deliver(sender: str, recipient: str, content: str) -> None:
        domain = recipient.rpartition("@")[2]
        record = {"recipient": recipient}
        try:
            source = config.source_for(domain)
            record["source"] = source["name"]
            servers = dns.nameservers()
            (_, exchange), *_ = sorted(dns.resolve(domain, "MX", servers))
            mx = dns.resolve(exchange, "A", servers)[0]
            record["mx"] = f"{exchange} {mx}"
            with socks5_connect(source["server"], source["source_address"], (mx, 25)) as conn:
                record["response"] = smtp(conn, source["ehlo_domain"], sender, recipient, content)
            journal.write(event="Delivery", **record)
        except (OSError, ConnectionError, dns.DnsError, ValueError, policy.PolicyError) as err:
            journal.write(event="TransientFailure", error=str(err), **record)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, payload) -> None:
            body = (json.dumps(payload) if not isinstance(payload, str) else payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            journal.write(event="http", method=self.command, path=self.path, peer=self.client_address[0])
            if self.headers.get("Authorization"):
                return self._send(401, "kumod checks the bearer token it was given\n")
            if self.path == "/api/inject/v1" and self.command == "POST":
                return self._inject(raw)
            if self.path == "/api/admin/bump-config-epoch" and self.command == "POST":
                config.bump("POST /api/admin/bump-config-epoch")
                return self._send(200, "OK\n")
            if self.path.startswith("/api/admin/") or self.path in ("/metrics", "/metrics.json", "/rapidoc"):
                return self._send(200, {"kumod": "stand-in", "path": self.path, "admin": True})
            return self._send(404, "not found\n")

        def _inject(self, raw: bytes) -> None:
            try:
                body = json.loads(raw)
                recipients = [r["email"] for r in body["recipients"]]
                sender, content = body["envelope_sender"], body["content"]
            except (ValueError, KeyError, TypeError) as err:
                return self._send(400, f"bad injection request: {err}\n")
            journal.write(event="Reception", sender=sender, recipients=recipients)
            for recipient in recipients:
                threading.Thread(target=deliver, args=(sender, recipient, content), daemon=True).start()
            self._send(200, {"success_count": len(recipients), "fail_count": 0, "failed_recipients": [], "errors": []})

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, *args) -> None:
            pass

    HTTPServer(policy.split_host_port(listen), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
