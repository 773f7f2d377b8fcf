"""OCI layouts hard-link layers from crossdock's blob cache: no bytes copied, the cache's stamp
kept current (the next build does not hash the blob again), and a cached layer changed on disk
(through the layout's link, say) is refused, never written into a layout."""

from __future__ import annotations

import pytest

from crossdock import cache as cache_module
from crossdock.cache import BlobCache
from crossdock.errors import UnsafeContentError
from crossdock.sinks import write_oci_layout
from tests.support.images import image_set


@pytest.fixture
def cached(tmp_path):
    blobs = BlobCache(tmp_path / "cache" / "blobs")
    images = image_set(blobs.root / "sha256")  # layers written where the cache keeps them
    for blob in images.blobs():
        assert blobs.verified(blob.descriptor.digest) == blob.path  # hashed once, stamped
    return blobs, images


def test_layers_are_linked_and_the_cache_is_not_hashed_again(cached, tmp_path, monkeypatch):
    blobs, images = cached
    layout = write_oci_layout(images, tmp_path / "layout", blobs=blobs)
    hashed = []
    real = cache_module.file_digest

    def spy(path, algorithm):
        hashed.append(path)
        return real(path, algorithm)

    monkeypatch.setattr(cache_module, "file_digest", spy)
    for blob in images.blobs():
        written = layout / "blobs" / "sha256" / blob.descriptor.digest.hex
        assert written.stat().st_ino == blob.path.stat().st_ino  # a link, not a copy
        assert blobs.verified(blob.descriptor.digest) == blob.path
    assert hashed == []  # the link re-stamped the blob


def test_a_cached_layer_changed_through_a_link_is_refused(cached, tmp_path):
    blobs, images = cached
    layout = write_oci_layout(images, tmp_path / "layout", blobs=blobs)
    victim = next(images.blobs())
    linked = layout / "blobs" / "sha256" / victim.descriptor.digest.hex
    data = bytearray(linked.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes: written through the layout's name
    linked.write_bytes(bytes(data))
    with pytest.raises(UnsafeContentError, match="changed on disk"):
        write_oci_layout(images, tmp_path / "another", blobs=blobs)
    assert blobs.verified(victim.descriptor.digest) is None  # dropped: rebuilt next time
