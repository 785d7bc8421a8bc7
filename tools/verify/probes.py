"""Checklist items 1-3 and the closed-port checks, run from wherever the tool runs.

Items 1-2 ask Nginx for a 401 and a 404 on 443, which both firewalls open only to `ping8Cidrs` and
`trustedCidrs`: from anywhere else the connection is dropped and the rows fail as "filtered". So
the place to run this is a network in `trustedCidrs` (or the PING8 app's), and never one in
`monitoringCidrs` or `adminCidrs`, where a port rightly open to those networks would look exposed.
HTTPS goes to each MTA's public address with its FQDN as SNI and Host, so the probe reaches the
machine itself (not whatever DNS says today) and still verifies the certificate clients will see.
"""

import http.client
import socket
import ssl

from components.matrix import Role
from tools.verify.checks import Result, Task, failed, passed
from tools.verify.stack import GUIDE_PORTS, Host, Ports, Stack

GROUP = "probes"
WHERE = "443 admits only ping8Cidrs and trustedCidrs: run these probes from a network in trustedCidrs"
INJECT = "/api/inject/v1"
# An invented path, then KumoMTA paths that Nginx must not publish (the admin API, the JSON
# metrics next to the published /metrics).
NOT_PUBLISHED = ("/kumomta-verify-no-such-path", "/api/admin/bounce/v1", "/metrics.json")


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store, or only `ca_file` (a private CA, or a host's placeholder certificate)."""
    return ssl.create_default_context(cafile=ca_file)


def tasks(stack: Stack, timeout: float, tls: ssl.SSLContext, ports: Ports = GUIDE_PORTS) -> list[Task]:
    out = []
    for mta in stack.of_role(Role.MTA):
        name = f"{mta.label}: POST {INJECT} without a token gives 401"
        out.append(Task(GROUP, name, lambda m=mta, n=name: [_status(m, n, "POST", INJECT, 401, ports, tls, timeout)]))
        for path in NOT_PUBLISHED:
            name = f"{mta.label}: GET {path} gives 404"
            out.append(
                Task(GROUP, name, lambda m=mta, n=name, p=path: [_status(m, n, "GET", p, 404, ports, tls, timeout)])
            )
        out.append(
            _closed_task(mta, ports.kumod, f"{ports.kumod}/tcp (kumod)", timeout, "it must listen on 127.0.0.1 only")
        )
    for proxy in stack.of_role(Role.PROXY):
        out.append(_closed_task(proxy, ports.socks, f"{ports.socks}/tcp (SOCKS5)", timeout, "only MTAs may reach it"))
        metrics = stack.settings.proxy_metrics_port
        hint = "only monitoringCidrs may reach it; run verify from outside them"
        out.append(_closed_task(proxy, metrics, f"{metrics}/tcp (metrics)", timeout, hint))
    return out


class Filtered(TimeoutError):
    """The TCP connection itself got no answer: a firewall dropped it."""


def http_status(address: str, port: int, fqdn: str, method: str, path: str, tls: ssl.SSLContext, timeout: float) -> int:
    """One HTTPS request without credentials to `address`, presenting `fqdn`; the status code."""
    body = b"{}" if method == "POST" else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {fqdn}\r\nUser-Agent: kumomta-verify\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except TimeoutError:
        raise Filtered from None
    with raw, tls.wrap_socket(raw, server_hostname=fqdn) as s:
        s.sendall(head.encode() + body)
        response = http.client.HTTPResponse(s, method=method)
        response.begin()
        return response.status


def reachable(address: str, port: int, timeout: float) -> tuple[bool, str]:
    """Whether a TCP connection from here completes, and what happened."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True, f"{address}:{port} accepted a connection from here"
    except TimeoutError:
        return False, f"no answer from {address}:{port} within {timeout:g}s (filtered)"
    except ConnectionRefusedError:
        return False, f"{address}:{port} refused the connection"
    except OSError as err:
        return False, f"{address}:{port} unreachable ({err.strerror or err})"


def _status(host: Host, check: str, method: str, path: str, want: int, ports: Ports, tls, timeout) -> Result:
    where = f"{host.public_ip}:{ports.https} as {host.fqdn}"
    try:
        got = http_status(host.public_ip, ports.https, host.fqdn, method, path, tls, timeout)
    except ssl.SSLCertVerificationError as err:
        return failed(
            GROUP, check, f"{where}: certificate not trusted ({err.verify_message}); --ca-file for a private CA"
        )
    except Filtered:
        return failed(GROUP, check, f"{where}: no answer to the connection within {timeout:g}s (filtered); {WHERE}")
    except TimeoutError:
        return failed(GROUP, check, f"{where}: no answer within {timeout:g}s")
    except OSError as err:
        return failed(GROUP, check, f"{where}: {err.strerror or err}")
    except http.client.HTTPException as err:
        return failed(GROUP, check, f"{where}: not an HTTP answer ({type(err).__name__})")
    if got != want:
        return failed(GROUP, check, f"{where} answered {got}, expected {want}")
    return passed(GROUP, check, f"{where} answered {got}")


def _closed_task(host: Host, port: int, what: str, timeout: float, why: str) -> Task:
    check = f"{host.label}: {what} not reachable from here"

    def run() -> list[Result]:
        connected, how = reachable(host.public_ip, port, timeout)
        return [failed(GROUP, check, f"{how}; {why}") if connected else passed(GROUP, check, how)]

    return Task(GROUP, check, run)
