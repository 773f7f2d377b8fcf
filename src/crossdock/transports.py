"""Image names as skopeo spells them: ``TRANSPORT:DETAILS``, the one parser every command that
reads or writes images uses (verify, push, build outputs).

==============================  ==========================================================
``docker://REF``                a registry (``REF`` as ``[REGISTRY/]REPO[:TAG][@DIGEST]``)
``oci:DIR[:TAG]``               an OCI image layout folder; TAG selects by ref name
``oci-archive:FILE[:TAG]``      a tar of an OCI image layout
``docker-archive:FILE[:REF]``   a ``docker save`` tarball; REF selects one of its images
``docker-daemon:REF``           an image in the local docker daemon (its Engine API)
``REF``                         bare: a registry reference, as before transports existed
``DIR`` / ``FILE``              bare, existing: an OCI layout folder / a docker save tarball
==============================  ==========================================================

As in skopeo (containers/image ``SplitPathAndImage``), a path ends at its first colon, and
whatever follows is the tag or reference. A name that looks like a transport but is not one
(``dir:/tmp/x``, ``ocii:x``, ``https://...``) is an error here, never read as a registry host
called ``oci:`` (which would mean a DNS lookup and retries before failing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crossdock.errors import ConfigError
from crossdock.registry.reference import Reference, refuse_credentials

__all__ = [
    "TRANSPORTS",
    "DockerArchive",
    "DockerDaemon",
    "ImageName",
    "OciArchive",
    "OciLayout",
    "Registry",
    "destination",
    "parse_image_name",
    "registry_destination",
    "registry_image",
]


@dataclass(frozen=True)
class Registry:
    reference: Reference

    def __str__(self) -> str:
        return f"docker://{self.reference}"


@dataclass(frozen=True)
class OciLayout:
    path: Path
    tag: str | None = None

    def __str__(self) -> str:
        return f"oci:{self.path}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class OciArchive:
    path: Path
    tag: str | None = None

    def __str__(self) -> str:
        return f"oci-archive:{self.path}" + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class DockerArchive:
    path: Path
    reference: str | None = None  # a RepoTags entry (``repo:tag``), as docker save wrote it

    def __str__(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.reference}" if self.reference else "")


@dataclass(frozen=True)
class DockerDaemon:
    reference: str  # ``repo:tag`` as docker names it, or an image id ``sha256:...``

    def __str__(self) -> str:
        return f"docker-daemon:{self.reference}"


ImageName = Registry | OciLayout | OciArchive | DockerArchive | DockerDaemon

TRANSPORTS = ("docker://", "oci:", "oci-archive:", "docker-archive:", "docker-daemon:")

_EXAMPLES = (
    "docker://REGISTRY/REPO:TAG, oci:DIR[:TAG], oci-archive:FILE[:TAG], "
    "docker-archive:FILE[:REF], docker-daemon:REPO:TAG, or a bare REGISTRY/REPO:TAG"
)
# skopeo's other transports and URL schemes: never a registry host or a repository name.
_NOT_SUPPORTED = frozenset(
    {"dir", "docker", "containers-storage", "ostree", "sif", "tarball", "http", "https", "file"}
)
# Something before a colon that reads as a transport or URL scheme name.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(.*)$", re.DOTALL)
# What may follow ``host:`` in a bare reference: a port and the repository path.
_PORT_AND_PATH = re.compile(r"^\d+/")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


def parse_image_name(text: str) -> ImageName:
    """Read ``text`` as a skopeo-style image name (see the module docstring)."""
    name = text.strip()
    if not name:
        raise ConfigError("an image name is empty", hint=f"write {_EXAMPLES}")
    if not Path(name).exists():  # a local file may have any name; a reference no credentials
        refuse_credentials(name.removeprefix("docker://"))
    if name.startswith("docker://"):
        return Registry(_reference(name.removeprefix("docker://"), text))
    match = _SCHEME.match(name)
    if match is not None:
        named = _with_transport(match.group(1), match.group(2), text)
        if named is not None:
            return named
    # Existing local files keep working bare, as before transports existed.
    path = Path(name)
    if path.is_dir():
        return OciLayout(path)
    if path.is_file():
        return DockerArchive(path)
    if "/" in name and (name.startswith((".", "/", "~"))):
        raise ConfigError(
            f"{text!r} does not exist",
            hint="an OCI layout folder is oci:DIR, a docker save tarball docker-archive:FILE",
        )
    return Registry(_reference(name, text))


def _with_transport(transport: str, details: str, text: str) -> ImageName | None:
    """The image ``TRANSPORT:DETAILS`` names; None when it is a bare reference after all."""
    if transport in ("oci", "oci-archive"):
        path, tag = _path_and_tag(details, text)
        return OciLayout(path, tag) if transport == "oci" else OciArchive(path, tag)
    if transport == "docker-archive":
        path, _, reference = _split_path(details, text)
        return DockerArchive(path, reference or None)
    if transport == "docker-daemon":
        if not details:
            raise ConfigError(f"{text!r}: docker-daemon: needs an image name (REPO:TAG)")
        return DockerDaemon(details)
    if transport in _NOT_SUPPORTED or not _bare_reference(details):
        raise ConfigError(
            f"{text!r}: {transport}: is not a transport crossdock reads or writes",
            hint=f"write {_EXAMPLES}",
        )
    return None


def _bare_reference(after: str) -> bool:
    """Whether what follows ``NAME:`` makes a bare registry reference: ``name:tag`` (no slash
    after the colon) or ``host:port/repository``."""
    if "/" not in after:
        return bool(_TAG.match(after.partition("@")[0]))
    return bool(_PORT_AND_PATH.match(after))


def _reference(text: str, original: str) -> Reference:
    if not text:
        raise ConfigError(f"{original!r}: no image reference after the transport")
    return Reference.parse(text)


def _split_path(details: str, original: str) -> tuple[Path, str, str]:
    path, colon, rest = details.partition(":")
    if not path:
        raise ConfigError(f"{original!r}: no path after the transport", hint=f"write {_EXAMPLES}")
    return Path(path), colon, rest


def _path_and_tag(details: str, original: str) -> tuple[Path, str | None]:
    path, _, tag = _split_path(details, original)
    if tag and not _TAG.match(tag):
        raise ConfigError(f"{original!r}: {tag!r} is not a tag", hint="tags are [A-Za-z0-9_.-]")
    return path, tag or None


def destination(
    text: str, kind: type[OciLayout] | type[DockerArchive]
) -> OciLayout | DockerArchive:
    """A local output option (``--oci-layout``, ``--docker-archive``): its transport's name
    (``oci:DIR[:TAG]``, ``docker-archive:FILE[:REF]``) or a bare path."""
    prefix = "oci:" if kind is OciLayout else "docker-archive:"
    if text.startswith(prefix):
        named = parse_image_name(text)
        if isinstance(named, kind):
            return named
    other = next((t for t in TRANSPORTS if text.startswith(t)), None)
    if other is not None:
        raise ConfigError(f"{text!r}: this option writes {prefix}PATH, not {other}")
    return kind(Path(text))


def registry_destination(text: str) -> str:
    """A registry to push to, bare (``REGISTRY/REPO[:TAG]``) or as ``docker://REF``, returned
    bare; any other transport is refused here instead of being read as a host name."""
    refuse_credentials(text.removeprefix("docker://"))
    if text.startswith("docker://"):
        return text.removeprefix("docker://")
    match = _SCHEME.match(text.strip())
    if match is not None and (
        f"{match.group(1)}:" in TRANSPORTS
        or match.group(1) in _NOT_SUPPORTED
        or not _bare_reference(match.group(2))
    ):
        raise ConfigError(
            f"{text!r}: a push goes to a registry (docker://REGISTRY/REPO[:TAG])",
            hint="local outputs are --oci-layout oci:DIR and --docker-archive FILE",
        )
    return text


def registry_image(text: str, *, what: str = "this command reads") -> Reference:
    """A registry image (``docker://REF`` or a bare ``REF``) for commands that only work on a
    registry (``crossdock rebase``); any other transport is a one-line error, never a host."""
    named = parse_image_name(text)
    if not isinstance(named, Registry):
        raise ConfigError(
            f"{text!r}: {what} a registry image, not {str(named).partition(':')[0]}:",
            hint="write docker://REGISTRY/REPO:TAG (or REGISTRY/REPO:TAG)",
        )
    return named.reference
