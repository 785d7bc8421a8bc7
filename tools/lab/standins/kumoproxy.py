"""KumoProxy stand-in: a SOCKS5 server (RFC 1928) bound where the rendered policy and its environment say.

It speaks the dialect kumod uses (KumoMTA crates/kumod/src/egress_source.rs, the Socks5 arm of
the proxy handshake): no authentication, then BIND to the egress source address (port 0), then
CONNECT to the MX, after which bytes are relayed. The server side follows
crates/proxy-server/src/proxy_handler.rs: BIND binds a socket to the requested address, CONNECT
connects from it, domain names are refused. The metrics listener, when the policy starts one,
answers GET /metrics. `python -m tools.lab.standins.kumoproxy JOURNAL --proxy-config POLICY`
(proxy-server's own option; the environment as the unit's EnvironmentFile sets it). A policy it
can't read or a listener it can't bind ends it with status 1, as proxy-server exits.
"""

import contextlib
import http.server
import socket
import socketserver
import struct
import sys
import threading

from tools.lab.standins import policy
from tools.lab.standins.common import HTTPServer, Journal, stop_on_term

SUCCESS, FAILURE, NOT_ALLOWED, REFUSED, UNSUPPORTED, ADDRESS_UNSUPPORTED = 0, 1, 2, 5, 7, 8
IDLE = 60.0


def read_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def read_request(conn: socket.socket) -> tuple[int, str | None, int]:
    """(command, IPv4 address or None for a name, port)."""
    _, command, _, kind = read_exact(conn, 4)
    if kind == 1:
        address = socket.inet_ntoa(read_exact(conn, 4))
    elif kind == 3:
        read_exact(conn, read_exact(conn, 1)[0])
        address = None
    elif kind == 4:
        read_exact(conn, 16)
        address = None
    else:
        raise ConnectionError(f"address type {kind}")
    (port,) = struct.unpack("!H", read_exact(conn, 2))
    return command, address, port


def reply(conn: socket.socket, status: int, address: str = "0.0.0.0", port: int = 0) -> None:
    conn.sendall(bytes([5, status, 0, 1]) + socket.inet_aton(address) + struct.pack("!H", port))


def relay(a: socket.socket, b: socket.socket) -> None:
    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    other = threading.Thread(target=pump, args=(b, a), daemon=True)
    other.start()
    pump(a, b)
    other.join(IDLE)


class Socks(socketserver.BaseRequestHandler):
    journal: Journal

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(IDLE)
        peer = self.client_address[0]
        event = {"peer": peer, "bind": None, "connect": None, "status": None}
        try:
            version, count = read_exact(conn, 2)
            methods = read_exact(conn, count)
            if version != 5 or 0 not in methods:
                conn.sendall(b"\x05\xff")
                return
            conn.sendall(b"\x05\x00")
            bound = None
            for _ in range(4):  # BIND, then CONNECT; anything longer is refused
                command, address, port = read_request(conn)
                if address is None:
                    reply(conn, ADDRESS_UNSUPPORTED)
                    event["status"] = "domain names are not supported"
                    return
                if command == 2 and bound is None:  # BIND: the egress source address
                    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    try:
                        bound.bind((address, port))
                    except OSError as err:
                        reply(conn, FAILURE)
                        event["status"] = f"bind {address}: {err.strerror}"
                        return
                    event["bind"] = address
                    reply(conn, SUCCESS, *bound.getsockname())
                elif command == 1:  # CONNECT
                    remote = bound or socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    remote.settimeout(10)
                    event["connect"] = f"{address}:{port}"
                    try:
                        remote.connect((address, port))
                    except OSError as err:
                        reply(conn, REFUSED if isinstance(err, ConnectionRefusedError) else FAILURE)
                        event["status"] = f"connect: {err.strerror or err}"
                        return
                    remote.settimeout(IDLE)
                    reply(conn, SUCCESS, *remote.getsockname())
                    event["status"] = "connected"
                    self.journal.write(event="session", **event)
                    relay(conn, remote)
                    return
                else:
                    reply(conn, UNSUPPORTED)
                    return
        except (OSError, ConnectionError) as err:
            event["status"] = f"error: {err}"
        finally:
            if event["status"] != "connected":
                self.journal.write(event="session", **event)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def metrics_server(listen: str) -> HTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"# kumolab proxy-server stand-in\nproxy_connections_total 0\n"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return HTTPServer(policy.split_host_port(listen), Handler)


def main(journal_path: str, *args: str) -> int:
    stop_on_term()
    policy_path = args[args.index("--proxy-config") + 1]
    Socks.journal = Journal(journal_path)
    try:
        with open(policy_path) as f:
            listeners = policy.proxy_listeners(f.read())
        socks = Server(policy.split_host_port(listeners["socks"]), Socks)
        metrics = metrics_server(listeners["metrics"]) if listeners["metrics"] else None
    except (OSError, policy.PolicyError) as err:
        Socks.journal.write(event="exit", error=str(err))
        print(f"proxy-server (lab stand-in): {err}", file=sys.stderr)
        return 1
    Socks.journal.write(event="start", **listeners)
    if metrics:
        threading.Thread(target=metrics.serve_forever, daemon=True).start()
    with socks:
        socks.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
