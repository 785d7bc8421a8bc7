"""Settings for both clouds, and the proxies an MTA would be rendered with."""

import shutil

import pytest

from components.bootstrap import InlineToken, ProxyTarget, SsmToken
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
        **overrides,
    }
    return parse(values)


PROXIES = {
    "aws": [ProxyTarget("proxy.example.com", "10.42.2.10", "10.42.2.10")],
    "hcloud": [
        ProxyTarget("proxy.example.com", "10.0.1.10", "198.51.100.20"),
        ProxyTarget("proxy2.example.com", "10.0.1.11", "198.51.100.21"),
    ],
}
MTA_SOURCES = {"aws": ["10.42.1.0/24"], "hcloud": ["10.0.1.2", "10.0.1.3"]}
CHANNELS = {"aws": SsmToken("/kumomta/prod/mta/inject-token", "eu-central-1"), "hcloud": InlineToken(TOKEN)}


def need(*tools: str) -> None:
    """Skip, naming the package, when a real tool is missing; `.ci/run` installs them all."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install the package that .ci/run lists)")


@pytest.fixture(params=["aws", "hcloud"])
def cloud(request) -> str:
    return request.param
