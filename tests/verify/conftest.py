"""The verify tests' AWS: the session's moto server (tests/conftest.py) through boto3's standard configuration."""

import pytest


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
