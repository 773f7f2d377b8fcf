"""A tarball that ``docker load`` accepts (the ``docker save`` format: manifest.json naming each
image's config, repo tags and layer files). Docker 20.10 loads one platform per image, so each
platform becomes its own image tagged ``REPO:TAG-ARCH``."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from crossdock.image.artifact import ImageSet
from crossdock.sinks.destination import partial_beside, writing

__all__ = ["write_docker_archive"]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_docker_archive(
    image_set: ImageSet, dest: Path, *, repository: str, tag: str
) -> list[str]:
    """Write ``dest`` and return the tags it carries (one per platform)."""
    # A name of its own: another build may write the same archive at once.
    partial = partial_beside(dest)
    try:
        with writing(dest, "docker archive"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            return _write(image_set, partial, dest, repository, tag)
    finally:
        partial.unlink(missing_ok=True)


def _write(image_set: ImageSet, partial: Path, dest: Path, repository: str, tag: str) -> list[str]:
    manifest: list[dict[str, object]] = []
    tags: list[str] = []
    written: set[str] = set()
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for image in image_set.images:
            config_name = f"{image.config.digest.hex}.json"
            if config_name not in written:
                _add_bytes(tar, config_name, image.config.raw)
                written.add(config_name)
            layer_names = []
            for blob in image.layers:
                # docker load decompresses gzip layers itself; keep them as they are.
                name = f"{blob.descriptor.digest.hex}/layer.tar"
                if name not in written:
                    tar.add(blob.path, arcname=name)
                    written.add(name)
                layer_names.append(name)
            repo_tag = f"{repository}:{image.platform.tag(tag)}"
            tags.append(repo_tag)
            manifest.append({"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names})
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    partial.replace(dest)
    return tags
