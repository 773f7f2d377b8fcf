"""An OCI image layout directory (image-spec image-layout.md): ``oci-layout``, ``index.json``
and ``blobs/sha256/<hex>``. Readable by skopeo (``oci:DIR``), crane, and ``crossdock verify``.

Reading a layout back, verified, is ``crossdock.sources.oci_layout``'s job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from crossdock import scratch
from crossdock.cache import BlobCache, atomic_write
from crossdock.errors import UnsafeContentError
from crossdock.image.artifact import ImageSet
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index, canonical_json
from crossdock.image.mediatypes import MediaType
from crossdock.sinks.destination import partial_beside, writing
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
    if data is not None:
        _write_whole(path, data)
        return
    if source is None:
        raise ValueError("a blob is written from its bytes or from a file")
    from_cache = blobs is not None and source == blobs.path_for(digest)
    if blobs is not None and from_cache:
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
    # Another build may write the same blob into this layout at once (services built into
    # one folder by make -j): each writes its own partial file and renames it whole.
    with scratch.tracked(partial_beside(path)) as partial:
        # (from the cache: another file system, as link_to found)
        if from_cache or not _linked(source, partial):
            shutil.copyfile(source, partial)
        partial.replace(path)


def _linked(source: Path, dest: Path) -> bool:
    """A hard link to ``source`` at ``dest`` where they share a file system: no bytes copied
    (blobs are content-addressed and never modified in place; the blob cache re-hashes a blob
    whose file changed, through either name)."""
    try:
        os.link(source, dest)
    except OSError:
        return False
    return True


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` as the file ``path``, replaced whole (``atomic_write``): a reader, or another
    build writing the same layout, sees the old file or the new one, never a part. Readable by
    all, as the layout's other files are: other tools (skopeo, crane) read it."""
    atomic_write(path, data, mode=0o644)


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
    _write_whole(root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
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
    _write_whole(root / "index.json", canonical_json(json.loads(index_json.raw)))
    return root


def _named(desc: Descriptor, name: str) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size, desc.platform, {REF_NAME: name})
