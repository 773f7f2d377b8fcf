"""OCI layouts hard-link layers from crossdock's blob cache: no bytes copied, the cache's stamp
kept current (the next build does not hash the blob again), and a cached layer changed on disk
(through the layout's link, say) is refused, never written into a layout."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

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


# -- two writers of one layout at once (services built into one folder by make -j) ----------


def _blobs_match_their_names(layout):
    for path in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path.name


@pytest.mark.parametrize("blob", ["layer", "manifest"])
def test_two_writers_of_one_layout_at_once_both_finish_and_leave_whole_blobs(
    tmp_path, monkeypatch, blob
):
    # The interleaving: this writer has a blob's partial file ready (a layer linked from
    # where it was built, or a manifest's bytes written) and is about to rename it when
    # another build writes the same blobs into the same layout, whole. With one fixed partial
    # name per blob, the other replaced or truncated this one's partial file, renamed it away
    # and removed what was left, and this writer's rename failed (No such file or directory).
    images = image_set(tmp_path / "built")
    layer, manifest = images.images[0].layers[0], images.images[0].manifest
    digest = layer.descriptor.digest if blob == "layer" else manifest.digest
    layout = tmp_path / "layout"
    real_replace = os.replace
    other: list[Path] = []

    def replace_after_another_writer(src, dst, *args, **kwargs):
        if not other and Path(dst).name == digest.hex:
            other.append(layout)
            write_oci_layout(images, layout)  # the other build, whole
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace_after_another_writer)
    write_oci_layout(images, layout)
    assert other == [layout]
    _blobs_match_their_names(layout)
    assert (layout / "blobs" / "sha256" / manifest.digest.hex).read_bytes() == manifest.raw
    assert not [p.name for p in layout.iterdir() if p.name.startswith(".")]
    assert not list((layout / "blobs" / "sha256").glob(".*"))  # no partial file left


def test_index_json_is_replaced_whole_never_rewritten_in_place(tmp_path):
    # A reader (skopeo, another build's writer) that opened index.json reads one whole
    # document: a second write into the same layout gives it a new file. Written in place,
    # the reader's file was truncated under it (and two writers' bytes could interleave).
    images = image_set(tmp_path / "built")
    layout = write_oci_layout(images, tmp_path / "layout", tag="first")
    with (layout / "index.json").open("rb") as reader:
        write_oci_layout(images, layout, tag="second")
        seen = json.loads(reader.read())
    assert seen["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "first"
    now = json.loads((layout / "index.json").read_bytes())
    assert now["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "second"
