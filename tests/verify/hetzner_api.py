"""A Hetzner Cloud API on loopback, answering from recorded responses, for the real `hcloud` client.

The envelopes (IDs, labels, pagination, primary IPs) are recorded in `recorded/`. The firewall
rules are what the Hetzner backend declares for the stack's config today, in the shape the API
returns them, so a new matrix row doesn't make the recording stale. Tests edit `firewalls` and
`primary_ips` to simulate console changes, and read `requests` to see what the client asked.
"""

import copy
import http.server
import json
import threading
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlsplit

from components.hcloud import firewall_rules
from components.matrix import Role
from components.settings import Settings

RECORDED = Path(__file__).parent / "recorded"
TOKEN = "recorded-read-only-token"


class HetznerApi:
    def __init__(self, settings: Settings):
        self.firewalls = _load("hcloud_firewalls.json")["firewalls"]
        for firewall in self.firewalls:
            firewall["rules"] = [
                as_api(rule) for rule in firewall_rules(Role(firewall["labels"]["kumomta-role"]), settings)
            ]
        self.primary_ips = _load("hcloud_primary_ips.json")["primary_ips"]
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        self.requests.append((path, query))
        if path == "/v1/firewalls":
            stack = dict(p.split("=", 1) for p in query["label_selector"][0].split(",") if "=" in p)["kumomta-stack"]
            return 200, _page("firewalls", [f for f in self.firewalls if f["labels"].get("kumomta-stack") == stack])
        if path == "/v1/primary_ips":
            return 200, _page("primary_ips", [p for p in self.primary_ips if p["ip"] in query.get("ip", [p["ip"]])])
        return 404, {"error": {"code": "not_found", "message": f"{path} not found", "details": None}}

    def _handler(self):
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, body = 401, {"error": {"code": "unauthorized", "message": "unable to authenticate"}}
                else:
                    status, body = api.answer(url.path, parse_qs(url.query))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


def _load(name: str) -> dict:
    return copy.deepcopy(json.loads((RECORDED / name).read_text()))


def _page(key: str, items: list[dict]) -> dict:
    pagination = {"page": 1, "per_page": 25, "previous_page": None, "next_page": None, "last_page": 1}
    return {key: items, "meta": {"pagination": {**pagination, "total_entries": len(items)}}}


def as_api(rule: dict) -> dict:
    """A declared rule as the API returns it: both address lists present, description or null."""
    return {
        "description": rule.get("description"),
        "direction": rule["direction"],
        "port": rule.get("port"),
        "protocol": rule["protocol"],
        "source_ips": rule.get("source_ips", []),
        "destination_ips": rule.get("destination_ips", []),
    }
