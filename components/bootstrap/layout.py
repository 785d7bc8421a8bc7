"""Where things live on a host, and the numbers that two rendered files must agree on.

The ports come from the matrix rows, so kumod, Nginx, KumoProxy and the host firewall cannot
drift from the table the cloud firewalls are built from.
"""

from components.matrix import MATRIX, Peer, Role


def _matrix_port(role: Role, direction: str, peer: Peer) -> int:
    (port,) = {r.port for r in MATRIX if (r.role, r.direction, r.peer) == (role, direction, peer)}
    return port


KUMOD_HTTP_PORT = _matrix_port(Role.MTA, "in", Peer.LOOPBACK)
KUMOD_HTTP = f"127.0.0.1:{KUMOD_HTTP_PORT}"
SOCKS_PORT = _matrix_port(Role.PROXY, "in", Peer.MTA_HOSTS)

# Nginx refuses bodies above this and kumod's `request_body_limit` is set to the same value;
# kumod's own default (2 MiB) would turn large messages into 413s behind a 200-capable Nginx.
BODY_LIMIT_MIB = 16

SPOOL_DIR = "/var/spool/kumomta"
SPOOL_LABEL = "kumospool"
LOG_DIR = "/var/log/kumomta"
KUMO_ETC = "/opt/kumomta/etc"
DKIM_DIR = f"{KUMO_ETC}/dkim"
POLICY = f"{KUMO_ETC}/policy/init.lua"
PROXY_POLICY = "/opt/kumomta/etc/proxy/proxy.lua"
PROXY_ENV = "/etc/kumoproxy/listen.env"

ACME_ROOT = "/var/www/acme"
TLS_DIR = "/etc/nginx/kumomta-tls"
TOKEN_MAP = "/etc/nginx/kumomta-bearer.map"
NGINX_SITE = "/etc/nginx/conf.d/kumomta.conf"
SBIN = "/usr/local/sbin"
RESOLVED_CONF = "/etc/systemd/resolved.conf.d/kumomta.conf"

# Link-local cloud services that no cloud firewall filters but a default-drop host firewall would.
METADATA = "169.254.169.254"
