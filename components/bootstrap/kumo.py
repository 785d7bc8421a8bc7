"""KumoMTA's own configuration: the kumod policy on the MTA, KumoProxy's policy and unit on the proxy."""

import ipaddress
from collections.abc import Sequence

from components.bootstrap import layout
from components.bootstrap.peers import ProxyTarget
from components.bootstrap.render import template
from components.settings import Settings


def mta_policy(fqdn: str, proxies: Sequence[ProxyTarget]) -> str:
    """`init.lua`: HTTP on loopback only, the spool volume, and one SOCKS5 source per proxy."""
    if not proxies:
        raise ValueError("an MTA needs at least one proxy to send through")
    sources = []
    for proxy in proxies:
        connect, source = ipaddress.ip_address(proxy.connect_ip), ipaddress.ip_address(proxy.source_ip)
        server = f"[{connect}]" if connect.version == 6 else str(connect)
        sources.append(
            f"  [{_lua(proxy.fqdn)}] = {{\n"
            f"    server = {_lua(f'{server}:{layout.SOCKS_PORT}')},\n"
            f"    source_address = {_lua(str(source))},\n"
            f"    ehlo_domain = {_lua(proxy.fqdn)},\n"
            "  },"
        )
    return template(
        "init.lua",
        fqdn=fqdn,
        sources="\n".join(sources),
        listen=layout.KUMOD_HTTP,
        body_limit=layout.BODY_LIMIT_MIB * 1024 * 1024,
        spool_dir=layout.SPOOL_DIR,
        log_dir=layout.LOG_DIR,
    )


def proxy_policy(fqdn: str, settings: Settings) -> str:
    """`proxy.lua`: SOCKS5 on the private address; metrics only when monitoring networks are set."""
    metrics = ""
    if settings.monitoring_cidrs:
        trusted = ", ".join(_lua(str(c)) for c in settings.monitoring_cidrs)
        # `[::]` also takes IPv4 on Linux; bind it only when a monitoring network is IPv6.
        any_address = "[::]" if any(c.version == 6 for c in settings.monitoring_cidrs) else "0.0.0.0"
        metrics = (
            "\n\n  -- Metrics for the monitoring networks only; they are also its only trusted hosts.\n"
            "  proxy.start_http_listener {\n"
            f"    listen = {_lua(f'{any_address}:{settings.proxy_metrics_port}')},\n"
            f"    trusted_hosts = {{ {trusted} }},\n"
            "  }"
        )
    return template("proxy.lua", fqdn=fqdn, env_file=layout.PROXY_ENV, socks_port=layout.SOCKS_PORT, metrics=metrics)


def proxy_unit() -> str:
    """The systemd unit the `kumomta` package does not ship for proxy-server."""
    return template("kumoproxy.service", env_file=layout.PROXY_ENV, policy=layout.PROXY_POLICY)


def _lua(text: str) -> str:
    """A single-quoted Lua string; names and addresses here never hold quotes or backslashes."""
    if any(c in text for c in "'\\\n"):
        raise ValueError(f"{text!r} cannot be a Lua literal here")
    return f"'{text}'"
