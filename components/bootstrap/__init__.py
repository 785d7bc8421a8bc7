"""First-boot configuration of the hosts, rendered as text from the settings and the matrix.

Everything here is a pure function of plain values: no Pulumi resources, so the backends call it
inside `Output.apply` and the tests feed its output to the real tools.
"""

from components.bootstrap.peers import InlineToken, ProxyTarget, SsmToken
from components.bootstrap.userdata import mta_user_data, proxy_user_data

__all__ = ["InlineToken", "ProxyTarget", "SsmToken", "mta_user_data", "proxy_user_data"]
