"""What the hosts run, rendered as text from the settings and the matrix.

`userdata` is a host's first boot, `bundle` what it runs and enforces from then on (the day-2
channel's payload). Everything here is a pure function of plain values: no Pulumi resources, so the
backends call it inside `Output.apply` and the tests feed its output to the real tools.
"""

from components.bootstrap.bundle import Bundle, Secret, bearer_map, mta_bundle, proxy_bundle
from components.bootstrap.peers import ProxyTarget, SshChannel, SsmChannel
from components.bootstrap.userdata import first_boot

__all__ = [
    "Bundle",
    "ProxyTarget",
    "Secret",
    "SshChannel",
    "SsmChannel",
    "bearer_map",
    "first_boot",
    "mta_bundle",
    "proxy_bundle",
]
