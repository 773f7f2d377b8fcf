"""Turning a registry's error response into a crossdock error that says what to do.

Registries answer errors with ``{"errors": [{"code": "NAME_UNKNOWN", "message": ...}]}`` (OCI
distribution spec, "Error Codes"). The codes that need advice of their own are handled here,
including ECR's: it does not create repositories on push, and immutable repositories refuse to
move a tag.

Some hosts answer registry paths without being a registry: ``docker.io`` redirects ``/v2/...`` to
Docker's web site, a captive portal or a misconfigured proxy serves an HTML page with status 200.
Such answers are refused here (``NotARegistryError``) before anything parses or caches them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crossdock.errors import AuthError, NotFoundError, RegistryError
from crossdock.registry.reference import DOCKER_HUB
from crossdock.text import excerpt

__all__ = [
    "API_VERSION_HEADER",
    "ImmutableTagError",
    "NotARegistryError",
    "RegistryProblem",
    "access_refused_hint",
    "check_api_version",
    "check_registry_answer",
    "error_for_response",
    "not_a_registry",
    "problems_of",
]

if TYPE_CHECKING:
    from collections.abc import Sequence

    # Only the full client's answers are read here; the error classes are imported by the
    # release without it (a build answered from its record, crossdock.registry.light).
    import httpx

# Bodies of error responses are short JSON; a proxy's HTML error page is not worth more.
_MAX_ERROR_BODY = 64 * 1024


# Every registry (distribution, ECR, GHCR, Docker Hub, Quay, Harbor, zot) sends it on /v2/.
API_VERSION_HEADER = "Docker-Distribution-API-Version"


class ImmutableTagError(RegistryError):
    """The registry refuses to move a tag (an immutable repository, e.g. on ECR)."""


class NotARegistryError(RegistryError):
    """The host answered, but not as an OCI registry (a web page, a redirect off the API)."""


def not_a_registry(host: str, detail: str) -> NotARegistryError:
    return NotARegistryError(
        f"{host} does not answer as an OCI registry: {detail}",
        hint="check the registry host in the image reference or the mirror setting "
        "(CROSSDOCK_REGISTRY_MIRRORS); a proxy or captive portal may be answering instead",
    )


def _described(response: httpx.Response) -> str:
    """``GET https://host/path -> 200 text/html`` (redirects shown), for an error message."""
    request = response.request
    hops = [str(r.request.url.copy_with(query=None)) for r in response.history]
    path = " -> ".join([*hops, str(request.url.copy_with(query=None))])
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    return f"{request.method} {path} gave {response.status_code} {content_type or '(no type)'}"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def check_registry_answer(response: httpx.Response, host: str) -> None:
    """Refuse an answer that no registry gives: an HTML page (other than a 5xx from a proxy,
    which is retried as such, or a 401 carrying a challenge)."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("text/html", "application/xhtml+xml"):
        return
    if response.status_code >= 500 or response.status_code == 429:
        return
    if response.status_code == 401 and response.headers.get("www-authenticate"):
        return
    raise not_a_registry(host, _described(response) + " (a web page)")


def check_api_version(response: httpx.Response, host: str) -> None:
    """Refuse a ``GET /v2/`` answer that is not a registry's: the base endpoint answers 200 or
    401 with ``Docker-Distribution-API-Version`` on the registry's own host."""
    if response.history and _origin(response.url) != _origin(response.history[0].request.url):
        raise not_a_registry(host, _described(response) + " (redirected off the registry)")
    check_registry_answer(response, host)
    if response.status_code not in (200, 401) or API_VERSION_HEADER not in response.headers:
        raise not_a_registry(host, _described(response) + f" without {API_VERSION_HEADER}")


@dataclass(frozen=True)
class RegistryProblem:
    code: str
    message: str


def problems_of(response: httpx.Response) -> tuple[RegistryProblem, ...]:
    """The ``errors`` a registry reported in ``response`` (empty when the body is not that)."""
    import httpx  # loaded already: ``response`` is one of its answers

    try:
        body = json.loads(response.content[:_MAX_ERROR_BODY])
        return tuple(
            RegistryProblem(str(item.get("code", "")), str(item.get("message", "")))
            for item in body.get("errors") or []
            if isinstance(item, dict)
        )
    except (ValueError, AttributeError, TypeError, RecursionError, httpx.ResponseNotRead):
        return ()


def error_for_response(  # noqa: PLR0911 - one return per kind of advice
    response: httpx.Response, *, registry: str, repository: str, action: str, ecr: bool = False
) -> RegistryError:
    """The error to raise for a failed ``action`` (e.g. "push manifest sha256:...")."""
    problems = problems_of(response)
    codes = {p.code for p in problems}
    # The registry's words are outside text: quoted on one line, bounded.
    detail = excerpt(
        "; ".join(f"{p.code}: {p.message}" for p in problems) or _reason(response), 500
    )
    where = f"{registry}/{repository}"
    text = f"cannot {action} on {where}: {response.status_code} {detail}"
    if "NAME_UNKNOWN" in codes:
        if ecr:
            return NotFoundError(
                text,
                hint="ECR does not create repositories on push: create it or pass "
                "--create-repository",
            )
        return NotFoundError(text, hint=f"check the repository name {repository!r}")
    if _is_immutable_refusal(response, problems):
        return ImmutableTagError(
            text,
            hint="the repository's tags are immutable: push under a new tag (the timestamped "
            "and git-SHA tags are new on every build), or make the repository's tags mutable",
        )
    if response.status_code in (401, 403) or codes & {"UNAUTHORIZED", "DENIED"}:
        return AuthError(
            text,
            hint=f"check that your credentials for {registry} may {action.split(maxsplit=1)[0]} "
            f"to {repository}",
        )
    if response.status_code == 404 or codes & {"BLOB_UNKNOWN", "MANIFEST_UNKNOWN"}:
        return NotFoundError(text, hint="check the reference; it may have been deleted")
    if "DIGEST_INVALID" in codes or "SIZE_INVALID" in codes:
        return RegistryError(
            text,
            hint="the bytes sent do not match their digest: a local file changed or is "
            "corrupt; rebuild the image",
        )
    return RegistryError(text, hint="retry later; if it persists, check the registry's logs")


def access_refused_hint(registry: str, scopes: Sequence[str]) -> str:
    """What to do when ``registry`` (the name credentials are stored under, ``docker.io`` for
    Docker Hub) refuses a request sent with a token for ``scopes``. Docker Hub takes pushes only
    under the account's own name: a one-part name (``docker.io/myapp``) is ``library/myapp``,
    Docker's official images, where nobody else may push."""
    pushes = [scope.split(":")[1] for scope in scopes if "push" in scope.rsplit(":", 1)[-1]]
    if registry == DOCKER_HUB and any(name.startswith("library/") for name in pushes):
        return (
            "Docker Hub takes pushes under your account's name only: push to "
            "docker.io/<your user>/NAME (a name without '/' means library/NAME, Docker's "
            "official images)"
        )
    return (
        f"log in again (docker login {registry}) or check the account's permissions on this "
        "repository"
    )


def _is_immutable_refusal(response: httpx.Response, problems: tuple[RegistryProblem, ...]) -> bool:
    # ECR answers a re-tag in an immutable repository with 400 TAG_INVALID ("... already exists
    # ... cannot be overwritten because the repository is immutable"); its API names it
    # ImageTagAlreadyExistsException. Other registries use MANIFEST_* codes with similar text.
    if response.status_code not in (400, 409):
        return False
    for problem in problems:
        text = f"{problem.code} {problem.message}".lower()
        if "immutable" in text or "imagetagalreadyexists" in text:
            return True
        if problem.code == "TAG_INVALID" and "already exists" in text:
            return True
    return False


def _reason(response: httpx.Response) -> str:
    return response.reason_phrase or "(no error details)"
