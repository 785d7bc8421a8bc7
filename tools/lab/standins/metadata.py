"""The cloud's instance metadata service at 169.254.169.254, answering each host by its source address.

AWS: IMDSv2 only (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html):
a session token from `PUT /latest/api/token`, then `GET /latest/meta-data/local-ipv4` with it.
Hetzner (https://docs.hetzner.cloud/reference/cloud#server-metadata): `GET
/hetzner/v1/metadata/private-networks`, a YAML list of the server's private networks.
`python -m tools.lab.standins.metadata ADDRESS HOSTS_JSON JOURNAL`; HOSTS_JSON maps a source
address to {"local-ipv4": ..., "private-ip": ...}.
"""

import http.server
import json
import secrets
import sys

from tools.lab.standins.common import HTTPServer, Journal, stop_on_term


def main(address: str, hosts_file: str, journal_path: str) -> None:
    stop_on_term()
    with open(hosts_file) as f:
        hosts = json.load(f)
    journal = Journal(journal_path)
    tokens: set[str] = set()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: str) -> None:
            journal.write(
                event="request", peer=self.client_address[0], method=self.command, path=self.path, status=status
            )
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                token = secrets.token_urlsafe(24)
                tokens.add(token)
                return self._send(200, token)
            return self._send(400, "")

        def do_GET(self) -> None:
            host = hosts.get(self.client_address[0])
            if host is None:
                return self._send(404, "")
            if self.path.startswith("/latest/"):
                if self.headers.get("X-aws-ec2-metadata-token") not in tokens:
                    return self._send(401, "")
                if self.path == "/latest/meta-data/local-ipv4":
                    return self._send(200, host["local-ipv4"])
            if self.path == "/hetzner/v1/metadata/private-networks":
                return self._send(200, f"- ip: {host['private-ip']}\n  alias_ips: []\n")
            return self._send(404, "")

        def log_message(self, *args) -> None:
            pass

    HTTPServer((address, 80), Handler).serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
