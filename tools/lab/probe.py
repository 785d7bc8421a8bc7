"""Probes run inside one namespace, all at once: TCP connects, DNS questions, HTTPS requests.

Standard library only; reads a JSON list of probes on stdin and prints one JSON result per probe
(`reached` and what happened). A TCP probe is reached when the handshake completes; a refused or
unreachable one is reported as such. Every probe is bounded by its timeout.
`ip netns exec NS python -m tools.lab.probe < probes.json`
"""

import http.client
import json
import socket
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor

from tools.lab.standins import dns


def tcp(p: dict) -> dict:
    timeout = p.get("timeout", 1.0)
    source = (p["src"], 0) if p.get("src") else None
    try:
        with socket.create_connection((p["dst"], p["port"]), timeout=timeout, source_address=source):
            return {"reached": True, "detail": "connected"}
    except TimeoutError:
        return {"reached": False, "detail": f"no answer within {timeout:g}s (filtered)"}
    except ConnectionRefusedError:
        return {"reached": False, "refused": True, "detail": "refused"}
    except OSError as err:
        return {"reached": False, "detail": err.strerror or str(err)}


def query(p: dict) -> dict:
    servers = [p["server"]] if p.get("server") else dns.nameservers()
    try:
        answers = dns.resolve(p["name"], p.get("qtype", "A"), servers, p.get("timeout", 1.0))
    except dns.DnsError as err:
        return {"reached": False, "detail": str(err)}
    return {"reached": True, "detail": f"{p['name']} -> {answers}", "answers": answers}


def https(p: dict) -> dict:
    timeout = p.get("timeout", 3.0)
    context = ssl.create_default_context(cafile=p.get("cafile"))
    body = p.get("body", "").encode()
    headers = {"Host": p["host"], "Content-Type": "application/json", "Connection": "close"}
    if p.get("authorization"):
        headers["Authorization"] = p["authorization"]
    source = (p["src"], 0) if p.get("src") else None
    try:
        conn = http.client.HTTPSConnection(
            p["dst"], p.get("port", 443), timeout=timeout, context=context, source_address=source
        )
        conn.sock = context.wrap_socket(
            socket.create_connection((p["dst"], p.get("port", 443)), timeout, source), server_hostname=p["host"]
        )
        conn.request(p.get("method", "GET"), p["path"], body=body or None, headers=headers)
        response = conn.getresponse()
        text = response.read(4096).decode(errors="replace")
        conn.close()
    except (OSError, http.client.HTTPException) as err:
        return {"reached": False, "detail": f"{type(err).__name__}: {err}"}
    return {"reached": True, "status": response.status, "detail": f"HTTP {response.status}", "body": text[:500]}


KINDS = {"tcp": tcp, "dns": query, "https": https}


def run(probes: list[dict], workers: int = 128) -> list[dict]:
    def one(p: dict) -> dict:
        return {"id": p["id"], **KINDS[p["kind"]](p)}

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(probes)))) as pool:
        return list(pool.map(one, probes))


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
