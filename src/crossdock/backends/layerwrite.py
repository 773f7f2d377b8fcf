"""A layer written into crossdock's blob cache, with what its verification needs to know.

The layer's bytes are hashed on the way out (its digest and diff_id), and each file's
observation (``crossdock.verify.observe``) is read from its bytes as they are written, so the
verify step neither decompresses the layer nor reads its files again: the member index, the
layer's uncompressed digest (its diff_id, which verification compares with the config's) and
the observations are kept by the digest of the bytes just written. Used by the native backend
for its layers, in its own process or in a child (``crossdock.backends.inchild``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from crossdock import scratch
from crossdock.cache import CacheLayout
from crossdock.layers import LayerBlob, LayerEntry, write_layer

if TYPE_CHECKING:
    from crossdock.rootfs.fsview import LazyBuffer

__all__ = ["write_layer_into_cache"]


def write_layer_into_cache(
    entries: Iterable[LayerEntry], cache_dir: Path, *, mtime: int
) -> LayerBlob:
    """Write the layer of ``entries`` (every file's time ``mtime``) into the blob cache of
    crossdock's cache folder ``cache_dir``; the blob returned is the cache's file."""
    from crossdock.rootfs.fsview import DEFAULT_READ_LIMIT
    from crossdock.rootfs.layerindex import IndexCache
    from crossdock.verify.observe import Observation, ObservationCache, observe

    layout = CacheLayout(cache_dir)
    work = layout.work
    work.mkdir(parents=True, exist_ok=True)
    observed: dict[int, Observation] = {}

    def observe_member(ordinal: int, name: str, data: LazyBuffer) -> None:
        observed[ordinal] = observe(data, name)

    with scratch.temporary_directory(dir=work) as tmp:
        blob = write_layer(entries, Path(tmp) / "layer.tar.gz", mtime=mtime, observe=observe_member)
        final = layout.blobs.adopt(blob.path, blob.digest)
    if blob.members is not None:
        IndexCache(cache_dir).store(blob.digest, blob.members, blob.diff_id)
    ObservationCache(cache_dir, limit=DEFAULT_READ_LIMIT).add_for(blob.digest, observed)
    return LayerBlob(final, blob.digest, blob.diff_id, blob.size)
