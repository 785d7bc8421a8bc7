"""What the stand-ins share: a JSON-lines journal and a clean stop on SIGTERM."""

import http.server
import json
import signal
import socketserver
import sys
import threading
import time


class Journal:
    """Append-only JSON lines, one per event, safe from several threads."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()

    def write(self, **event) -> None:
        event.setdefault("time", time.time())
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(event) + "\n")


def stop_on_term() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


class HTTPServer(http.server.ThreadingHTTPServer):
    """`http.server`'s threading server without its reverse DNS lookup of the bound address at start."""

    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
