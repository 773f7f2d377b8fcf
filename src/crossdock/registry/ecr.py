"""Amazon ECR: recognising its hosts, its token (boto3), and its repositories.

ECR differs from other registries in three ways that matter for a push (see ARCHITECTURE.md,
"Facts that save days"): it does not create repositories on push (``NAME_UNKNOWN``), it may
refuse to move tags (immutable repositories), and its auth is a 12-hour token from the ECR API
used as basic auth ``AWS:<token>``. boto3 is the optional extra ``crossdock[ecr]``, imported only
when a token or a repository check is needed.

``CROSSDOCK_ECR_ENDPOINT_URL`` points the ECR API elsewhere (moto's server in tests).
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crossdock.errors import AuthError, ConfigError, NotFoundError, RegistryError
from crossdock.registry.credentials import Credentials

__all__ = [
    "EcrRegistry",
    "ecr_credentials",
    "ensure_repository",
    "parse_ecr_host",
]

_ECR_HOST_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)
ENDPOINT_ENV = "CROSSDOCK_ECR_ENDPOINT_URL"


@dataclass(frozen=True)
class EcrRegistry:
    """An ECR registry: account, region, and where its API answers (None: AWS itself)."""

    account_id: str
    region: str
    endpoint_url: str | None = None

    def client(self) -> Any:  # noqa: ANN401 - boto3 clients are untyped
        try:
            import boto3
        except ImportError as err:
            raise ConfigError(
                "pushing to Amazon ECR without a credential helper needs boto3",
                hint="install crossdock[ecr] (pip install 'crossdock[ecr]'), or configure "
                "docker-credential-ecr-login in your docker config.json",
            ) from err
        # A session of its own, not boto3's module-wide default one: that session keeps the
        # first credentials it resolves for the life of the process, so a library user whose
        # AWS credentials were rotated, expired or removed would go on signing with the old ones
        # (and a later check would not see that there are none).
        session = boto3.session.Session(region_name=self.region)
        return session.client("ecr", endpoint_url=self.endpoint_url)


def parse_ecr_host(host: str, environ: Mapping[str, str] | None = None) -> EcrRegistry | None:
    """The ECR registry behind ``host`` (``ACCOUNT.dkr.ecr.REGION.amazonaws.com``), else None."""
    match = _ECR_HOST_RE.match(host)
    if match is None:
        return None
    env = os.environ if environ is None else environ
    return EcrRegistry(match["account"], match["region"], env.get(ENDPOINT_ENV) or None)


def ecr_credentials(registry: EcrRegistry) -> Credentials:
    """Basic-auth credentials from ``ecr:GetAuthorizationToken`` (``AWS`` + a 12-hour token)."""
    client = registry.client()
    try:
        answer = client.get_authorization_token(registryIds=[registry.account_id])
        token = str(answer["authorizationData"][0]["authorizationToken"])
        username, _, password = base64.b64decode(token).decode().partition(":")
    except Exception as err:
        # botocore raises many types (no credentials, expired, denied); the message names the
        # AWS side's problem without any secret, so it is safe to pass on.
        raise AuthError(
            f"cannot get an ECR token for account {registry.account_id} in {registry.region}: "
            f"{_aws_error_text(err)}",
            hint="check your AWS credentials (aws sts get-caller-identity) and that they "
            "allow ecr:GetAuthorizationToken",
        ) from err
    return Credentials(username, password, source="ecr:GetAuthorizationToken")


def ensure_repository(registry: EcrRegistry, repository: str, *, create: bool = False) -> bool:
    """Check that ``repository`` exists (ECR does not create repositories on push).

    Creates it when ``create`` is set. Returns whether its tags are immutable.
    """
    client = registry.client()
    try:
        found = client.describe_repositories(
            registryId=registry.account_id, repositoryNames=[repository]
        )
        return str(found["repositories"][0].get("imageTagMutability")) == "IMMUTABLE"
    except Exception as err:
        if _aws_error_code(err) != "RepositoryNotFoundException":
            raise RegistryError(
                f"cannot check ECR repository {repository!r} in account {registry.account_id} "
                f"({registry.region}): {_aws_error_text(err)}",
                hint="check your AWS credentials and ecr:DescribeRepositories permission",
            ) from err
        if not create:
            raise NotFoundError(
                f"ECR repository {repository!r} does not exist in account "
                f"{registry.account_id} ({registry.region})",
                hint="ECR does not create repositories on push: create it "
                f"(aws ecr create-repository --repository-name {repository}) "
                "or pass --create-repository",
            ) from err
    try:
        client.create_repository(repositoryName=repository, registryId=registry.account_id)
    except Exception as err:
        raise RegistryError(
            f"cannot create ECR repository {repository!r}: {_aws_error_text(err)}",
            hint="check the ecr:CreateRepository permission, or create it by hand",
        ) from err
    return False


def _aws_error_code(err: Exception) -> str | None:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str((response.get("Error") or {}).get("Code") or "") or None
    return None


def _aws_error_text(err: Exception) -> str:
    code = _aws_error_code(err)
    return f"{code}: {err}" if code else f"{type(err).__name__}: {err}"
