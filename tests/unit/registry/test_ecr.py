"""ECR's token and repository calls read the AWS credentials as they are when called (offline:
botocore refuses to sign without credentials before it opens a connection)."""

from __future__ import annotations

import pytest

from crossdock.errors import AuthError
from crossdock.registry.ecr import EcrRegistry, ecr_credentials
from tests.support.prerequisites import require_module

ACCOUNT, REGION = "123456789012", "us-east-1"


def test_credentials_are_read_when_asked_not_kept_from_an_earlier_client(monkeypatch, tmp_path):
    """boto3's module-wide default session keeps the first credentials it resolves: a client
    made from it after they were removed (rotated, expired, another test's) still signed with
    them. Each ECR client resolves them again."""
    require_module("boto3")
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEARLIERKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "earlier-secret-Wq4")
    registry = EcrRegistry(ACCOUNT, REGION, "http://127.0.0.1:9")
    earlier = registry.client()  # resolves the credentials there are now
    assert earlier.meta.region_name == REGION
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AuthError, match=f"account {ACCOUNT} in {REGION}: NoCredentialsError"):
        ecr_credentials(registry)
