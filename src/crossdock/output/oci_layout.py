"""An OCI image layout directory (image-spec image-layout.md): ``oci-layout``, ``index.json``
and ``blobs/sha256/<hex>``. Readable by skopeo (``oci:DIR``), crane, and ``crossdock verify``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from crossdock.image.artifact import ImageSet
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index, canonical_json
from crossdock.image.mediatypes import MediaType

__all__ = ["write_oci_layout"]

# image-layout.md: the annotation that names a reference (tag) in index.json.
_REF_NAME = "org.opencontainers.image.ref.name"


def _blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex


def _write_blob(
    root: Path, digest: Digest, data: bytes | None = None, source: Path | None = None
) -> None:
    path = _blob_path(root, digest)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if data is not None:
        partial.write_bytes(data)
    elif source is not None:
        shutil.copyfile(source, partial)
    partial.replace(path)


def write_oci_layout(image_set: ImageSet, root: Path, *, tag: str = "latest") -> Path:
    """Write every blob, manifest and the index; index.json names ``tag``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for blob in image_set.blobs():
        _write_blob(root, blob.descriptor.digest, source=blob.path)
    entries: list[Descriptor] = []
    for image in image_set.images:
        _write_blob(root, image.config.digest, data=image.config.raw)
        _write_blob(root, image.manifest.digest, data=image.manifest.raw)
        entries.append(image.manifest.descriptor(image.platform))
    if image_set.index is not None:
        _write_blob(root, image_set.index.digest, data=image_set.index.raw)
        top = [_named(image_set.index.descriptor(), tag)]
    else:
        # No index wanted (Lambda): name each single-platform manifest by tag-arch.
        top = [
            _named(d, f"{tag}-{d.platform.architecture}" if d.platform else tag) for d in entries
        ]
    index_json = Index.build(MediaType.OCI_INDEX, top)
    (root / "index.json").write_bytes(canonical_json(json.loads(index_json.raw)))
    return root


def _named(desc: Descriptor, name: str) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size, desc.platform, {_REF_NAME: name})
