"""An OCI image layout directory (image-spec image-layout.md): ``oci-layout``, ``index.json``
and ``blobs/sha256/<hex>``. Readable by skopeo (``oci:DIR``), crane, and ``crossdock verify``.

Reading a layout back, verified, is ``crossdock.sources.oci_layout``'s job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from crossdock.cache import BlobCache
from crossdock.errors import UnsafeContentError
from crossdock.image.artifact import ImageSet
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index, canonical_json
from crossdock.image.mediatypes import MediaType
from crossdock.sinks.destination import writing
from crossdock.sources.oci_layout import REF_NAME, layout_blob_path

__all__ = ["write_oci_layout"]


def _write_blob(
    root: Path,
    digest: Digest,
    data: bytes | None = None,
    source: Path | None = None,
    blobs: BlobCache | None = None,
) -> None:
    path = layout_blob_path(root, digest)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        if data is not None:
            partial.write_bytes(data)
        elif source is not None and blobs is not None and source == blobs.path_for(digest):
            # From crossdock's blob cache: checked, linked straight to its name (a new link is
            # whole at once; renaming it afterwards would change the file again), and its stamp
            # kept current.
            if blobs.link_to(digest, path) or path.exists():
                return  # linked (or written meanwhile by a concurrent writer)
            if blobs.verified(digest) is None:
                raise UnsafeContentError(
                    f"the cached layer {digest} changed on disk since it was built",
                    hint="build again: the cache rebuilds what no longer matches",
                )
            shutil.copyfile(source, partial)  # another file system: no link possible
        elif source is not None:
            try:
                # A hard link where the cache and the layout share a file system: no bytes
                # copied (blobs are content-addressed and never modified in place; the blob
                # cache re-hashes a blob whose file changed, through either name).
                partial.unlink(missing_ok=True)
                os.link(source, partial)
            except OSError:
                shutil.copyfile(source, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_oci_layout(
    image_set: ImageSet, root: Path, *, tag: str = "latest", blobs: BlobCache | None = None
) -> Path:
    """Write every blob, manifest and the index; index.json names ``tag``. Layers that live in
    ``blobs`` (crossdock's blob cache) are hard-linked from it where the file system allows."""
    with writing(root, "OCI layout"):
        return _write_oci_layout(image_set, root, tag, blobs)


def _write_oci_layout(
    image_set: ImageSet, root: Path, tag: str, blobs: BlobCache | None = None
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for blob in image_set.blobs():
        _write_blob(root, blob.descriptor.digest, source=blob.path, blobs=blobs)
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
        top = [_named(d, d.platform.tag(tag) if d.platform else tag) for d in entries]
    # Referrers (SBOMs) are listed in index.json beside the images, by their artifactType and
    # without a ref name (image-layout.md); their manifests' subject names the image.
    for image in image_set.images:
        for referrer in image.referrers:
            for descriptor, data in referrer.blobs:
                _write_blob(root, descriptor.digest, data=data)
            _write_blob(root, referrer.digest, data=referrer.manifest.raw)
            top.append(referrer.manifest.descriptor())
    index_json = Index.build(MediaType.OCI_INDEX, top)
    (root / "index.json").write_bytes(canonical_json(json.loads(index_json.raw)))
    return root


def _named(desc: Descriptor, name: str) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size, desc.platform, {REF_NAME: name})
