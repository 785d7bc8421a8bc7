"""The small host scripts under `templates/sbin/`, installed to /usr/local/sbin by cloud-init.

They are plain files rather than generated text, so tests run exactly what the hosts run.
"""

from components.bootstrap.render import TEMPLATES

NAMES = (
    "kumomta-tls-placeholder",
    "kumomta-cert-deploy",
    "kumomta-token",
    "kumomta-spool",
    "kumoproxy-address",
    "kumomta-resolver",
    "kumomta-spool-grow",
)


def script(name: str) -> str:
    if name not in NAMES:
        raise KeyError(name)
    return (TEMPLATES / "sbin" / name).read_text()
