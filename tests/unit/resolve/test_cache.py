"""The installed trees' cache (resolve/cache.py): what a cached tree's dist-info folders said is
recorded once and read back exactly, and a damaged record is read from the tree again."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.cache import CacheLayout
from crossdock.errors import ResolveError
from crossdock.resolve.cache import _reader
from crossdock.resolve.resolution import read_installed


def _tree(root: Path) -> Path:
    for name, version, wheel in (
        ("Orjson", "3.13.0", "Root-Is-Purelib: false\nTag: cp313-cp313-manylinux_2_17_aarch64\n"),
        ("docopt", "0.6.2", "Root-Is-Purelib: true\nTag: py3-none-any\n"),
    ):
        info = root / f"{name.lower()}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Name: {name}\nVersion: {version}\n")
        (info / "WHEEL").write_text(f"Wheel-Version: 1.0\n{wheel}")
    return root


def test_a_trees_distributions_are_recorded_and_read_back_exactly(tmp_path):
    tree = _tree(tmp_path / "tree")
    records = CacheLayout(tmp_path / "cache").records("installed-trees", version=1)
    built = frozenset({"docopt"})
    first = _reader(records, "k1")(tree, built)
    assert first == read_installed(tree, built)
    assert [d.name for d in first] == ["docopt", "orjson"]
    assert [d.built_from_sdist for d in first] == [True, False]
    [record] = list(records.folder.glob("*.rec"))
    # Read back from the record (the tree under a key never changes; the record is the same
    # facts), with the built flags of the export that asks.
    (tree / "docopt-0.6.2.dist-info" / "METADATA").unlink()
    again = _reader(records, "k1")(tree, frozenset())
    assert [(d.name, d.version, d.tags, d.pure) for d in again] == [
        (d.name, d.version, d.tags, d.pure) for d in first
    ]
    assert not any(d.built_from_sdist for d in again)
    # A damaged record is ignored: the tree is read (and here found incomplete).
    record.write_bytes(record.read_bytes().replace(b"0.6.2", b"0.6.3"))
    with pytest.raises(ResolveError, match="incomplete"):
        _reader(records, "k1")(tree, frozenset())
