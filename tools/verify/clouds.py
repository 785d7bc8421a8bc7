"""API clients for the drift audit and the inside checks, configured the standard way.

boto3 reads credentials, profile and `AWS_ENDPOINT_URL` from its usual chain, so the tool runs
against any AWS-compatible endpoint. The region is the stack's `aws:region` when set, since
that is where the program created the resources. hcloud reads `HCLOUD_TOKEN`, and
`HCLOUD_ENDPOINT` as the hcloud CLI does.
"""

import os

import boto3
import hcloud
from botocore.config import Config
from botocore.exceptions import NoRegionError

from tools.verify.checks import Unavailable
from tools.verify.stack import Stack


def aws(service: str, stack: Stack, timeout: float):
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"mode": "standard", "max_attempts": 3})
    try:
        # A session per client: the default session is not safe to share between the checks' threads.
        return boto3.session.Session().client(service, region_name=stack.aws_region, config=config)
    except NoRegionError:
        raise Unavailable("no AWS region: set aws:region in the stack config, or AWS_REGION") from None


def hetzner(timeout: float) -> hcloud.Client:
    token = os.environ.get("HCLOUD_TOKEN")
    if not token:
        raise Unavailable("HCLOUD_TOKEN is not set; export a (read-only) API token of the stack's Hetzner project")
    endpoint = os.environ.get("HCLOUD_ENDPOINT", "https://api.hetzner.cloud/v1")
    return hcloud.Client(token=token, api_endpoint=endpoint, timeout=timeout, application_name="kumomta-verify")
