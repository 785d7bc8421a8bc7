"""Nginx in front of kumod: the bearer gate, the ACME webroot and the https redirect."""

from components.bootstrap import layout
from components.bootstrap.render import template
from components.values import bearer_token


def site(
    fqdn: str,
    *,
    ipv6: bool = False,
    http_port: int = 80,
    https_port: int = 443,
    upstream: str = layout.KUMOD_HTTP,
    acme_root: str = layout.ACME_ROOT,
    tls_dir: str = layout.TLS_DIR,
    token_map: str = layout.TOKEN_MAP,
) -> str:
    """The `conf.d` file for the MTA. Ports and paths are parameters so tests can run it unprivileged."""
    return template(
        "nginx-site.conf",
        fqdn=fqdn,
        upstream=upstream,
        token_map=token_map,
        http_port=http_port,
        http_listen_v6=f"\n    listen [::]:{http_port} default_server;" if ipv6 else "",
        https_port=https_port,
        https_listen_v6=f"\n    listen [::]:{https_port} ssl default_server;" if ipv6 else "",
        https_port_suffix="" if https_port == 443 else f":{https_port}",
        acme_root=acme_root,
        tls_dir=tls_dir,
        body_limit_mib=layout.BODY_LIMIT_MIB,
    )


def token_map_line(token: str) -> str:
    """The one entry of the token map that Nginx includes, delivered to the MTAs as a secret.

    A regex, because Nginx compares plain map keys case-insensitively (ngx_http_map_module
    lowercases them), which would let the token through with its case changed. The scheme word is
    case-insensitive (RFC 7235 section 2.1) and followed by one or more spaces; the token is matched
    exactly, `.` and `+` in brackets so no backslash has to survive Nginx's string parsing.
    """
    bearer_token(token)
    exact = token.replace(".", "[.]").replace("+", "[+]")
    return f'"~^(?i:bearer) +{exact}$" 1;\n'
