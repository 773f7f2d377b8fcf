"""Images in the local docker daemon (``docker-daemon:REF``): the daemon's ``docker save`` of
the image, through its Engine API (``crossdock.dockerengine``), read as a docker save tarball."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossdock.dockerengine import save_image
from crossdock.image.artifact import ImageSet
from crossdock.platform import Platform
from crossdock.progress import NO_PROGRESS, Progress, step
from crossdock.sources.docker_archive import read_docker_archive

__all__ = ["read_daemon_image"]


def read_daemon_image(
    reference: str,
    work_dir: Path,
    *,
    platforms: Sequence[Platform] = (),
    progress: Progress = NO_PROGRESS,
) -> ImageSet:
    """The daemon's image ``reference`` (``repo:tag`` or an image id), saved into ``work_dir``
    (the save is a step of ``progress``)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with step(progress, None, "docker save", total=0) as saving:
        saved = save_image(reference, work_dir / "docker-save.tar", on_bytes=saving.advance)
    return read_docker_archive(saved, work_dir, platforms=platforms)
