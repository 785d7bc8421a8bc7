"""The verify tests' AWS: the session's moto server (tests/conftest.py) through boto3's standard configuration,
and a stubbed SSM client for the inside checks."""

import boto3
import pytest
from botocore.stub import Stubber


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """boto3's standard configuration pointed at moto, through AWS_ENDPOINT_URL as an operator would.

    The server is shared (a fresh moto backend costs a second); tests keep apart by stack name.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    return moto_endpoint


@pytest.fixture
def ssm(monkeypatch):
    """An SSM client whose answers the test queues (botocore's Stubber), and every SendCommand's parameters."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.session.Session().client("ssm", region_name="eu-central-1")
    sent: list[dict] = []
    client.meta.events.register("provide-client-params.ssm.SendCommand", lambda params, **_: sent.append(params))
    with Stubber(client) as stubber:
        yield client, stubber, sent
        stubber.assert_no_pending_responses()
