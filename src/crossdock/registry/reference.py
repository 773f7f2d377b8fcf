"""Image references (``registry/repository:tag@digest``) and registry mirrors.

Parsing follows the distribution reference grammar (docker/distribution ``reference``), with
Docker Hub's two conventions: no registry means ``docker.io``; a one-part name on Docker Hub
lives under ``library/``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from crossdock.errors import ConfigError
from crossdock.image.digest import Digest

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "Mirrors",
    "Reference",
    "api_base_url",
    "api_host",
    "check_tag",
    "is_loopback_registry",
    "refuse_credentials",
]

DOCKER_HUB = "docker.io"
# docker.io itself redirects /v2/ to Docker's web site; the registry API is served here
# (the host Docker's own client talks to).
DOCKER_HUB_API = "registry-1.docker.io"
# Hosts that mean Docker Hub: references name it ``docker.io``, requests go to DOCKER_HUB_API.
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", DOCKER_HUB_API})


def api_host(registry: str) -> str:
    """The host that serves the registry API for ``registry`` (a reference's registry)."""
    return DOCKER_HUB_API if registry in _HUB_ALIASES else registry


def api_base_url(host: str) -> str:
    """``https://HOST``, or ``http://HOST`` for a loopback registry (as Docker allows)."""
    return f"{'http' if is_loopback_registry(host) else 'https'}://{host}"


_DIGEST_START = re.compile(r"^sha(256|512):")
_SCHEME_PREFIX = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def refuse_credentials(text: str, what: str = "image reference") -> None:
    """Refuse ``USER:PASSWORD@HOST/...`` (URL userinfo) anywhere a registry is named: such a
    secret would end up in shell history, CI logs, error messages and ``crossdock plan``'s JSON.
    The message names only the host; the credentials are never repeated."""
    rest = _SCHEME_PREFIX.sub("", text.strip(), count=1)
    head, slash, _ = rest.partition("/")
    _, at, host = head.rpartition("@")
    if not at:
        return
    if not slash and _DIGEST_START.match(host):
        return  # NAME@sha256:... is a digest, not credentials
    shown = f"{host}/{rest.partition('/')[2]}" if slash else host
    raise ConfigError(
        f"the {what} carries credentials (USER:PASSWORD@ before {shown!r}); crossdock does not "
        "take credentials in references",
        hint=f"remove them and log in instead: `docker login {host}` (docker config) or a "
        "credential helper (credHelpers in ~/.docker/config.json); crossdock reads both",
    )


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_MIRROR_HOST_RE = re.compile(
    r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?$"
)


def check_tag(tag: str, where: str = "--tag") -> str:
    """``tag`` when it is a valid OCI tag (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``)."""
    if not _TAG_RE.match(tag):
        raise ConfigError(
            f"{where} {tag!r} is not a valid tag",
            hint="a tag is up to 128 letters, digits, '_', '.' and '-', not starting with "
            "'.' or '-'",
        )
    return tag


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str, *, default_tag: str | None = "latest") -> Reference:
        refuse_credentials(text)
        original = text
        text = text.strip()
        digest: Digest | None = None
        if "@" in text:
            text, _, digest_text = text.partition("@")
            try:
                digest = Digest(digest_text)
            except ValueError as err:
                raise ConfigError(f"bad digest in image reference {original!r}") from err
        tag: str | None = None
        # A colon after the last slash is a tag; before it, a registry port.
        name, colon, maybe_tag = text.rpartition(":")
        if colon and "/" not in maybe_tag:
            text, tag = name, maybe_tag
        first, slash, rest = text.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
            host, colon, port = registry.rpartition(":")
            if colon and (not host or not port.isdigit()) and not registry.endswith("]"):
                # "oci:/tmp/x" is not a registry called "oci:": no DNS lookup for it.
                raise ConfigError(
                    f"cannot read image reference {original!r}: {registry!r} is not HOST:PORT",
                    hint="a registry is HOST[:PORT]; for local images write oci:DIR, "
                    "oci-archive:FILE or docker-archive:FILE",
                )
        else:
            registry, repository = DOCKER_HUB, text
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in repository:
                repository = f"library/{repository}"
        if not _REPOSITORY_RE.match(repository):
            raise ConfigError(
                f"cannot read image reference {original!r}",
                hint="write it as [REGISTRY/]REPOSITORY[:TAG][@sha256:...], lower-case",
            )
        if tag is not None and not _TAG_RE.match(tag):
            raise ConfigError(f"bad tag {tag!r} in image reference {original!r}")
        if tag is None and digest is None:
            tag = default_tag
        return cls(registry, repository, tag, digest)

    @property
    def api_host(self) -> str:
        """The host that serves the registry API for this reference."""
        return api_host(self.registry)

    @property
    def identifier(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        if self.tag is None:
            raise ConfigError(f"reference {self} has neither tag nor digest")
        return self.tag

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: Digest) -> Reference:
        return replace(self, digest=digest)

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


@dataclass(frozen=True)
class Mirrors:
    """Maps public registry hosts to mirrors, keeping the repository path.

    ``docker.io=127.0.0.1:5555`` makes ``python:3.13-slim`` (docker.io/library/python) pull from
    ``127.0.0.1:5555/library/python:3.13-slim``. Corporate mirrors and ECR pull-through caches
    work the same way; a mirror may add a path prefix (``docker.io=mirror.corp/hub``).
    """

    hosts: Mapping[str, str]

    def __post_init__(self) -> None:
        for source, target in self.hosts.items():
            if not isinstance(source, str) or not isinstance(target, str):
                raise ConfigError(
                    f"registry mirror {source!r} = {target!r}: both must be strings",
                    hint='write e.g. "docker.io" = "127.0.0.1:5555" under [registry-mirrors]',
                )
            refuse_credentials(target, f"registry mirror for {source}")
            host = target.partition("/")[0]
            if not _MIRROR_HOST_RE.match(host):
                raise ConfigError(
                    f"registry mirror for {source}: {host!r} is not HOST[:PORT]",
                    hint="a mirror is HOST[:PORT][/PREFIX], e.g. 127.0.0.1:5555 or "
                    "mirror.example.com/hub",
                )

    @classmethod
    def parse(cls, text: str) -> Mirrors:
        """Parse ``host=mirror[,host=mirror...]`` (the CROSSDOCK_REGISTRY_MIRRORS format)."""
        hosts: dict[str, str] = {}
        for raw_item in text.split(","):
            item = raw_item.strip()
            if not item:
                continue
            refuse_credentials(item.partition("=")[2], "registry mirror")
            source, eq, target = item.partition("=")
            if not eq or not source.strip() or not target.strip():
                raise ConfigError(
                    f"cannot read registry mirror {item!r}",
                    hint="write mirrors as PUBLIC_HOST=MIRROR[/PREFIX], comma-separated, "
                    "e.g. docker.io=127.0.0.1:5555",
                )
            hosts[_normalize_host(source.strip())] = target.strip().rstrip("/")
        return cls(hosts)

    def apply(self, ref: Reference) -> Reference:
        """The reference to actually pull from (``ref`` itself when no mirror applies)."""
        target = self.hosts.get(ref.registry)
        if target is None:
            return ref
        host, _, prefix = target.partition("/")
        repository = f"{prefix}/{ref.repository}" if prefix else ref.repository
        return replace(ref, registry=host, repository=repository)


def _normalize_host(host: str) -> str:
    return DOCKER_HUB if host in _HUB_ALIASES else host


def is_loopback_registry(host: str) -> bool:
    """Registries on this machine speak plain HTTP by default, as Docker allows for them."""
    if host.startswith("["):  # [::1]:5000
        name = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # 127.0.0.1:5555, localhost:5000
        name = host.rsplit(":", 1)[0]
    else:  # a bare IPv6 address or a host without a port
        name = host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
