"""The PING8 app's webhook receiver: HTTPS, answers 200 to any request and records it.
`python -m tools.lab.standins.webhook ADDRESS PORT CERT KEY JOURNAL`
"""

import http.server
import ssl
import sys

from tools.lab.standins.common import HTTPServer, Journal, stop_on_term


def main(address: str, port: str, cert: str, key: str, journal_path: str) -> None:
    stop_on_term()
    journal = Journal(journal_path)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(length, 1 << 20))
            journal.write(event="request", peer=self.client_address[0], method=self.command, path=self.path)
            body = b'{"ok":true}\n'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _answer

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer((address, int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
