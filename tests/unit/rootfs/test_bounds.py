"""Bounded work on hostile layers (issue 13, point 3): a layer's member count and its extended
headers are bounded while streaming, before anything is allocated for them."""

from __future__ import annotations

import tarfile

import pytest

from crossdock.errors import UnsafeContentError
from crossdock.rootfs import layerindex
from crossdock.rootfs.layerindex import read_index
from tests.hostile import extended_header_bomb_layer, many_member_layer


def test_a_layer_with_too_many_members_stops_at_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(layerindex, "MAX_MEMBERS", 100)
    assert len(read_index(many_member_layer(tmp_path / "ok.tar", 100)).members) == 100
    with pytest.raises(UnsafeContentError, match="more than 100 members"):
        read_index(many_member_layer(tmp_path / "bomb.tar", 101))


def test_an_extended_header_claiming_gigabytes_is_refused_before_it_is_read(tmp_path):
    bomb = extended_header_bomb_layer(tmp_path / "pax.tar", 4 * 1024**3)
    with pytest.raises(UnsafeContentError, match="extended header of 4294967296 bytes"):
        read_index(bomb)
    # A normal long name (a PAX header of a few hundred bytes) still reads.
    long_name = "a/" * 200 + "file"
    layer = tmp_path / "long.tar"
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo(long_name))
    assert [m.name for m in read_index(layer).members] == [long_name]
