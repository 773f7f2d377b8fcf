"""Where an image comes from: one reader per source kind, as go-containerregistry's ``remote``,
``layout`` and ``tarball`` packages, each returning the one image model (``ImageSet`` /
``PlatformImage``) with every blob checked against its digest and every document bounded by
``crossdock.image.document``'s limits:

==========================  ==================================================================
``sources.registry``        ``docker://REF`` or a bare reference
``sources.oci_layout``      ``oci:DIR[:TAG]`` and ``oci-archive:FILE[:TAG]``
``sources.docker_archive``  ``docker-archive:FILE[:REF]`` (a ``docker save`` tarball)
``sources.daemon``          ``docker-daemon:REF`` (the local docker daemon, its Engine API)
==========================  ==================================================================

``open_images`` reads any of them by its skopeo-style name (``crossdock.transports``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from crossdock.platform import Platform
from crossdock.progress import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from crossdock.image.artifact import ImageSet, PlatformImage
    from crossdock.registry.reference import Mirrors
    from crossdock.transports import ImageName

# Each reader is imported where it is used: a module that needs one reader (the build's sinks
# use the OCI layout's blob paths) does not load the others (the docker daemon's client, tar).

__all__ = ["image_label", "open_images"]


@contextmanager
def open_images(
    source: str | ImageName,
    *,
    platforms: Sequence[Platform] = (),
    cache_dir: Path | None = None,
    mirrors: Mirrors | None = None,
    progress: Progress = NO_PROGRESS,
) -> Iterator[tuple[ImageSet, ...]]:
    """Every image of ``source`` (or only those of ``platforms``), a skopeo-style image name:
    one ``ImageSet`` per index it holds, and one for the images it holds without an index.
    Temporary files live until the context ends. Registry blobs are cached in ``cache_dir``,
    which is held in use until the context ends (the images' blobs are its files, and their
    readers keep facts in it: a ``crossdock cache prune`` waits); pulls and daemon reads are
    steps of ``progress``."""
    from crossdock import scratch
    from crossdock.cache import CacheLayout, in_use_if_any
    from crossdock.errors import NotFoundError
    from crossdock.sources.daemon import read_daemon_image
    from crossdock.sources.docker_archive import read_docker_archive
    from crossdock.sources.oci_layout import extract_oci_archive, read_oci_layout
    from crossdock.sources.registry import pull_image_set
    from crossdock.transports import (
        DockerArchive,
        DockerDaemon,
        OciArchive,
        OciLayout,
        Registry,
        parse_image_name,
    )

    name = parse_image_name(source) if isinstance(source, str) else source
    with in_use_if_any(cache_dir), scratch.temporary_directory(prefix="crossdock-verify-") as tmp:
        work = Path(tmp)
        sets: tuple[ImageSet, ...]
        match name:
            case Registry(reference=ref):
                blobs = CacheLayout(cache_dir or work).blobs
                sets = (
                    pull_image_set(
                        ref, blobs, platforms=platforms, mirrors=mirrors, progress=progress
                    ),
                )
            case OciLayout(path=path, tag=tag):
                sets = read_oci_layout(path, platforms=platforms, tag=tag)
            case OciArchive(path=path, tag=tag):
                root = extract_oci_archive(path, work / "layout")
                sets = read_oci_layout(root, platforms=platforms, tag=tag)
            case DockerArchive(path=path, reference=wanted):
                sets = (read_docker_archive(path, work, platforms=platforms, reference=wanted),)
            case DockerDaemon(reference=wanted):
                sets = (read_daemon_image(wanted, work, platforms=platforms, progress=progress),)
        sets = tuple(s for s in sets if s.images)
        if not sets:
            wanted_text = ", ".join(str(p) for p in platforms) or "any platform"
            raise NotFoundError(f"{source} has no image for {wanted_text}")
        yield sets


def image_label(name: ImageName, image: PlatformImage) -> str:
    """What a report calls ``image`` of the source ``name``: the source and the manifest
    digest, or for a docker save tarball (whose manifest no tool wrote) its tags."""
    from crossdock.transports import DockerArchive, DockerDaemon, OciArchive, OciLayout, Registry

    match name:
        case Registry(reference=ref):
            return f"{ref}@{image.digest}"
        case OciLayout(path=path):
            return f"oci:{path}@{image.digest}"
        case OciArchive():
            return f"{name}@{image.digest}"
        case DockerArchive(path=path):
            return f"docker-archive:{path.name}:{_tags(image)}"
        case DockerDaemon():
            return f"{name}:{_tags(image)}"


def _tags(image: PlatformImage) -> str:
    from crossdock.sources.oci_layout import REF_NAME

    listed = image.listed.annotations if image.listed else {}
    return listed.get(REF_NAME) or str(image.config.digest)
