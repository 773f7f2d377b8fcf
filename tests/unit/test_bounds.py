"""Bounded work on hostile inputs (issue 13, point 3): an index DAG is walked once per digest,
with a limit on distinct manifests; a layer's member count and its extended headers are bounded
while streaming, before anything is allocated for them."""

from __future__ import annotations

import tarfile

import pytest

from crossdock.errors import UnsafeContentError
from crossdock.image.document import MAX_MANIFESTS
from crossdock.platform import AMD64
from crossdock.rootfs import layerindex
from crossdock.rootfs.layerindex import read_members
from crossdock.sources.images import load_oci_layout
from tests.hostile import (
    config_bytes,
    distinct_manifests_layout,
    extended_header_bomb_layer,
    fanout_layout,
    many_member_layer,
    oci_layout,
    sha256,
)


def test_an_index_fanning_out_to_one_manifest_is_walked_once_per_digest(tmp_path):
    layer = b"\0" * 1024  # an empty tar
    image = oci_layout(tmp_path / "one", config_bytes(AMD64, [sha256(layer)]), [layer], AMD64)
    # 60 ways, 4 levels: 13 million paths to one manifest; each digest is read once.
    layout = fanout_layout(tmp_path / "fan", image, width=60, depth=4)
    assert len((layout / "index.json").read_bytes()) < 10_000
    images = load_oci_layout(layout)
    assert len(images) == 1
    assert images[0].layer_paths[0].read_bytes() == layer


def test_a_layout_with_too_many_distinct_manifests_is_refused(tmp_path):
    assert len(load_oci_layout(distinct_manifests_layout(tmp_path / "ok", MAX_MANIFESTS))) == (
        MAX_MANIFESTS
    )
    with pytest.raises(UnsafeContentError, match=f"more than {MAX_MANIFESTS} distinct manifests"):
        load_oci_layout(distinct_manifests_layout(tmp_path / "many", MAX_MANIFESTS + 1))


def test_a_layer_with_too_many_members_stops_at_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(layerindex, "MAX_MEMBERS", 100)
    assert len(read_members(many_member_layer(tmp_path / "ok.tar", 100))) == 100
    with pytest.raises(UnsafeContentError, match="more than 100 members"):
        read_members(many_member_layer(tmp_path / "bomb.tar", 101))


def test_an_extended_header_claiming_gigabytes_is_refused_before_it_is_read(tmp_path):
    bomb = extended_header_bomb_layer(tmp_path / "pax.tar", 4 * 1024**3)
    with pytest.raises(UnsafeContentError, match="extended header of 4294967296 bytes"):
        read_members(bomb)
    # A normal long name (a PAX header of a few hundred bytes) still reads.
    long_name = "a/" * 200 + "file"
    layer = tmp_path / "long.tar"
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo(long_name))
    assert [m.name for m in read_members(layer)] == [long_name]
