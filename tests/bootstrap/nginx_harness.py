"""A real nginx on loopback with the rendered site, in front of a recording stub of kumod."""

import contextlib
import http.client
import http.server
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from components.bootstrap import nginx, scripts


def install(directory: Path, name: str) -> Path:
    """Write one of the host scripts as an executable, as cloud-init would."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(scripts.script(name))
    path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Seen:
    """What the stub upstream received: (method, path, headers) per request."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


def _stub(seen: Seen) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = b"kumod stub\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args):
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)


def nginx_conf(root: Path, site: Path) -> Path:
    """A main config around the rendered site: everything nginx writes stays under `root`."""
    conf = root / "nginx.conf"
    conf.write_text(
        f"""user root;
pid {root}/nginx.pid;
error_log {root}/error.log;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {site};
}}
"""
    )
    return conf


@dataclass
class Site:
    """A rendered site's files under one directory; `nginx -t` and the live server use the same."""

    root: Path
    fqdn: str
    token: str
    http_port: int
    https_port: int
    upstream: str

    @classmethod
    def render(cls, root: Path, token: str, upstream: str) -> "Site":
        site = cls(root, "mta.example.com", token, free_port(), free_port(), upstream)
        (root / "tls").mkdir()
        subprocess.run(
            [str(install(root / "sbin", "kumomta-tls-placeholder")), str(root / "tls"), site.fqdn],
            check=True,
            capture_output=True,
        )
        (root / "bearer.map").write_text(nginx.token_map_line(token))
        challenge = root / "acme" / ".well-known" / "acme-challenge"
        challenge.mkdir(parents=True)
        (challenge / "probe-token").write_text("probe-token.thumbprint")
        (root / "site.conf").write_text(
            nginx.site(
                site.fqdn,
                http_port=site.http_port,
                https_port=site.https_port,
                upstream=upstream,
                acme_root=str(root / "acme"),
                tls_dir=str(root / "tls"),
                token_map=str(root / "bearer.map"),
            )
        )
        return site

    @property
    def conf(self) -> Path:
        return nginx_conf(self.root, self.root / "site.conf")

    def nginx(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nginx", "-p", str(self.root), "-e", str(self.root / "error.log"), "-c", str(self.conf), *args],
            check=False,
            capture_output=True,
            text=True,
        )


@contextlib.contextmanager
def running(root: Path, token: str):
    """Stub kumod and nginx up; yields (site, seen). Everything stops on exit."""
    seen = Seen()
    stub = _stub(seen)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    site = Site.render(root, token, f"127.0.0.1:{stub.server_address[1]}")
    started = site.nginx()
    assert started.returncode == 0, started.stderr
    try:
        _wait_for(site.https_port)
        yield site, seen
    finally:
        site.nginx("-s", "stop")
        stub.shutdown()
        stub.server_close()


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nginx did not listen on {port}")


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None, tls: bool = True, body=None):
    """One request to nginx on loopback; returns (status, headers, body)."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
