"""Reading an OCI image layout directory (image-spec image-layout.md) back, verified: a layout
folder is outside data that may have changed since it was written, so every blob is checked
against its descriptor's digest and size before anyone uses it (``crossdock verify``,
``crossdock push``, ``crossdock sbom``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from crossdock.errors import NotFoundError, UnsafeContentError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.document import MAX_DOCUMENT_BYTES

__all__ = [
    "REF_NAME",
    "layout_blob_path",
    "read_bounded",
    "read_layout_blob",
    "verified_layout_file",
]

# image-layout.md: the annotation that names a reference (tag) in index.json.
REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1024 * 1024


def layout_blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex


def read_bounded(path: Path) -> bytes:
    """A small JSON document (index.json, a manifest, a config), refusing anything huge."""
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise UnsafeContentError(
            f"{path} is larger than {MAX_DOCUMENT_BYTES} bytes; not a manifest"
        )
    return path.read_bytes()


def read_layout_blob(root: Path, descriptor: Descriptor) -> bytes:
    """The bytes of a small blob (manifest, index, config), checked against ``descriptor``."""
    path = layout_blob_path(root, descriptor.digest)
    if not path.is_file():
        raise NotFoundError(f"{root}: blob {descriptor.digest} is missing from the layout")
    data = read_bounded(path)
    if len(data) != descriptor.size or not descriptor.digest.matches(data):
        raise UnsafeContentError(
            f"{path} does not match its digest {descriptor.digest}",
            hint="the layout was changed after it was written; write it again",
        )
    return data


def verified_layout_file(root: Path, descriptor: Descriptor) -> Path:
    """The path of a layer blob after hashing it in a stream (never whole in memory)."""
    path = layout_blob_path(root, descriptor.digest)
    if not path.is_file():
        raise NotFoundError(f"{root}: layer {descriptor.digest} is missing from the layout")
    hasher = hashlib.new(descriptor.digest.algorithm)
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    if size != descriptor.size or hasher.hexdigest() != descriptor.digest.hex:
        raise UnsafeContentError(
            f"layer {path} does not match its descriptor ({descriptor.digest}, "
            f"{descriptor.size} bytes)",
            hint="the layout was changed after it was written; write it again",
        )
    return path
