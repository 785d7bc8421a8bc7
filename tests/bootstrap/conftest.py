"""Settings for both clouds, the proxies an MTA would be rendered with, and each cloud's day-2 channel."""

import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from components.bootstrap import ProxyTarget, SshChannel, SsmChannel, bearer_map
from components.settings import parse

TOKEN = "Zk3vQ9pLx2mN7rT4wY8bC1dF6gH0jK5sA3eU9iO2qW7zX4"


def settings(cloud: str, **overrides):
    dns = {"provider": "route53", "zoneId": "Z1"} if cloud == "aws" else {"provider": "hcloud", "zone": "example.com"}
    values = {
        "cloud": cloud,
        "domain": "example.com",
        "ping8Cidrs": ["203.0.113.10/32"],
        "trustedCidrs": ["198.51.100.0/28"],
        "adminCidrs": ["192.0.2.0/29"],
        "dns": dns,
        **({"deployCidrs": ["198.51.100.30/32"]} if cloud == "hcloud" else {}),
        **overrides,
    }
    return parse(values)


PROXIES = {
    "aws": [ProxyTarget("proxy.example.com", "10.42.2.10", "10.42.2.10")],
    "hcloud": [
        ProxyTarget("proxy.example.com", "10.43.2.10", "198.51.100.20"),
        ProxyTarget("proxy2.example.com", "10.43.2.11", "198.51.100.21"),
    ],
}
# The subnet of each role, as the other role's firewall names it.
SUBNETS = {
    "aws": {"mta": "10.42.1.0/24", "proxy": "10.42.2.0/24"},
    "hcloud": {"mta": "10.43.1.0/24", "proxy": "10.43.2.0/24"},
}


def _ssh_keys() -> tuple[str, str, str]:
    deploy, host = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    public = [k.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() for k in (deploy, host)]
    private = host.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()
    return public[0], private, public[1]


CHANNELS = {"aws": SsmChannel("eu-central-1", "/kumomta/prod/mta/mta/bundle"), "hcloud": SshChannel(*_ssh_keys())}
# The bearer map as each cloud's channel carries it: by SSM parameter on AWS, inline on Hetzner.
BEARER = {"aws": bearer_map(TOKEN, "/kumomta/prod/mta/secrets/bearer-map"), "hcloud": bearer_map(TOKEN, None)}


def need(*tools: str) -> None:
    """Skip, naming the package, when a real tool is missing; `.ci/run` installs them all."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install the package that .ci/run lists)")


@pytest.fixture(params=["aws", "hcloud"])
def cloud(request) -> str:
    return request.param
