"""KumoMTA's own configuration: the kumod policy on the MTA, KumoProxy's policy and unit on the proxy."""

import ipaddress
from collections.abc import Sequence

from components.bootstrap import layout
from components.bootstrap.peers import DkimKey, ProxyTarget
from components.bootstrap.render import template
from components.settings import Settings

# RFC 6376 section 5.4.1's recommended header set, as KumoMTA's DKIM guide lists it
# (docs/userguide/configuration/dkim.md); signed with `over_sign`, so none can be added after signing.
DKIM_HEADERS = (
    "From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
    "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post",
    "List-Owner", "List-Archive",
)  # fmt: skip


def dkim_path(key: DkimKey) -> str:
    """Where kumod reads a key: KumoMTA's own convention, /opt/kumomta/etc/dkim/<domain>/<selector>.key."""
    return f"{layout.DKIM_DIR}/{key.domain}/{key.selector}.key"


def mta_policy(fqdn: str, proxies: Sequence[ProxyTarget], dkim: Sequence[DkimKey] = ()) -> str:
    """`init.lua`: HTTP on loopback only, the spool volume, SOCKS5 sources per proxy and address family, and
    DKIM signing of every message injected over HTTP."""
    if not proxies:
        raise ValueError("an MTA needs at least one proxy to send through")
    sources = []
    for proxy in proxies:
        connect = ipaddress.ip_address(proxy.connect_ip)
        server = f"[{connect}]" if connect.version == 6 else str(connect)
        for name, address in ((proxy.fqdn, proxy.source_ip), (f"{proxy.fqdn}-ipv6", proxy.source_ipv6)):
            if address is None:
                continue
            source = ipaddress.ip_address(address)
            sources.append(
                f"  [{_lua(name)}] = {{\n"
                f"    server = {_lua(f'{server}:{layout.SOCKS_PORT}')},\n"
                f"    source_address = {_lua(str(source))},\n"
                f"    family = {source.version},\n"
                f"    ehlo_domain = {_lua(proxy.fqdn)},\n"
                "  },"
            )
    keys: dict[str, list[str]] = {}
    for key in sorted(dkim, key=lambda k: k.domain):  # stable: each domain keeps the configured order
        keys.setdefault(key.domain, []).append(
            f"    {{ selector = {_lua(key.selector)}, algorithm = {_lua(key.algorithm)}, "
            f"key = {_lua(dkim_path(key))}, from = {key.sign_from} }},"
        )
    signing = "\n".join(f"  [{_lua(domain)}] = {{\n" + "\n".join(rows) + "\n  }," for domain, rows in keys.items())
    return template(
        "init.lua",
        fqdn=fqdn,
        sources="\n".join(sources),
        dkim=signing,
        dkim_headers=", ".join(_lua(h) for h in DKIM_HEADERS),
        listen=layout.KUMOD_HTTP,
        body_limit=layout.BODY_LIMIT_MIB * 1024 * 1024,
        spool_dir=layout.SPOOL_DIR,
        log_dir=layout.LOG_DIR,
    )


def proxy_policy(fqdn: str, settings: Settings) -> str:
    """`proxy.lua`: SOCKS5 on the private address; metrics only when monitoring networks are set."""
    listener = acl = ""
    if settings.monitoring_cidrs:
        # `[::]` also takes IPv4 on Linux; bind it only when a monitoring network is IPv6.
        any_address = "[::]" if any(c.version == 6 for c in settings.monitoring_cidrs) else "0.0.0.0"
        listen = _lua(f"{any_address}:{settings.proxy_metrics_port}")
        # No trusted hosts, not even loopback: whatever reaches 5000 can ask SOCKS5 for 127.0.0.1:<metrics>, and a
        # trusted peer gets the admin API (KumoMTA's default ACL, assets/acls/default.toml).
        listener = f"\n  proxy.start_http_listener {{\n    listen = {listen},\n    trusted_hosts = {{}},\n  }}"
        acl = template("proxy-metrics.lua", acl=metrics_acl(settings.monitoring_cidrs))
    return template(
        "proxy.lua",
        fqdn=fqdn,
        env_file=layout.PROXY_ENV,
        socks_port=layout.SOCKS_PORT,
        metrics_listener=listener,
        metrics_acl=acl,
    )


def metrics_acl(networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """A KumoMTA ACL map (TOML) that lets `networks` GET the metrics endpoints and nothing else.

    Not `trusted_hosts`: the default ACL grants trusted hosts the admin API as well (KumoMTA
    assets/acls/default.toml, `http_listener/*/api/admin`). Resources and identities per KumoMTA
    docs/reference/kumo.aaa/load_acl_map.md; `MachineSet` per crates/kumo-server-common/src/authn_authz.rs.
    """
    machines = ", ".join(f'"{net}"' for net in networks)
    return "".join(
        f'[[acl."http_listener/*/{path}"]]\nallow = true\nprivileges = ["GET"]\nidentity.MachineSet = [{machines}]\n'
        for path in ("metrics", "metrics.json")
    )


def proxy_unit() -> str:
    """The systemd unit the `kumomta` package does not ship for proxy-server."""
    return template("kumoproxy.service", env_file=layout.PROXY_ENV, policy=layout.PROXY_POLICY)


def _lua(text: str) -> str:
    """A single-quoted Lua string; names and addresses here never hold quotes or backslashes."""
    if any(c in text for c in "'\\\n"):
        raise ValueError(f"{text!r} cannot be a Lua literal here")
    return f"'{text}'"
