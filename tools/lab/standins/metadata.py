"""The cloud's instance metadata service at 169.254.169.254, answering each host by its source address.

AWS: IMDSv2 only (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html):
a session token from `PUT /latest/api/token`, then `GET /latest/meta-data/local-ipv4` with it, and
the instance role's credentials at `/latest/meta-data/iam/security-credentials/<role>` (what boto3's
instance-metadata provider reads; the lab's SSM endpoint takes any).
Hetzner (https://docs.hetzner.cloud/reference/cloud#server-metadata): `GET
/hetzner/v1/metadata/private-networks`, a YAML list of the server's private networks.
`python -m tools.lab.standins.metadata ADDRESS HOSTS_JSON JOURNAL`; HOSTS_JSON maps a source
address to {"local-ipv4": ..., "private-ip": ..., "role": ...}.
"""

import http.server
import json
import secrets
import sys
import time

from tools.lab.standins.common import HTTPServer, Journal, stop_on_term


def main(address: str, hosts_file: str, journal_path: str) -> None:
    stop_on_term()
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
            with open(hosts_file) as f:  # read each time: a re-planned lab adds and removes hosts
                host = json.load(f).get(self.client_address[0])
            if host is None:
                return self._send(404, "")
            if self.path.startswith("/latest/"):
                if self.headers.get("X-aws-ec2-metadata-token") not in tokens:
                    return self._send(401, "")
                if self.path == "/latest/meta-data/local-ipv4":
                    return self._send(200, host["local-ipv4"])
                roles = "/latest/meta-data/iam/security-credentials/"
                if self.path == roles and host.get("role"):
                    return self._send(200, host["role"])
                if host.get("role") and self.path == roles + host["role"]:
                    return self._send(200, _credentials())
            if self.path == "/hetzner/v1/metadata/private-networks":
                return self._send(200, f"- ip: {host['private-ip']}\n  alias_ips: []\n")
            return self._send(404, "")

        def log_message(self, *args) -> None:
            pass

    HTTPServer((address, 80), Handler).serve_forever()


def _credentials() -> str:
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 6 * 3600))
    return json.dumps({"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAKUMOLAB" + secrets.token_hex(4).upper(),
                       "SecretAccessKey": secrets.token_urlsafe(30), "Token": secrets.token_urlsafe(60),
                       "Expiration": expires, "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:])
