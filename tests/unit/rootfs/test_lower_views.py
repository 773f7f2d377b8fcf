"""The view of an image's lower layers kept by their digests (fsview._LowerViews, issue 14: a
code-only rebuild applies its new top layer on it): a view made on the record is the view made
from the layers, node for node, and a record that is damaged, of other layers or of another
shape is never used."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from crossdock.image.digest import Digest, sha256_of
from crossdock.rootfs.fsview import LayerFS, _Node
from tests.support.layertar import Entry, write_layer

# Every kind of member and every rule of layer.md the view applies: files, folders implied and
# written, symlinks, a hardlink to a lower layer's file, a whiteout, an opaque folder, a file
# replacing a folder, a name that escapes the root (an anomaly), a device outside /dev.
LOWER: list[list[Entry]] = [
    [
        ("usr", "dir", None),
        ("usr/lib/libc.so.6", "file", b"\x7fELF libc"),
        ("usr/bin/python3.13", "file", b"python"),
        ("usr/bin/python3", "symlink", "python3.13"),
        ("lib", "symlink", "usr/lib"),
        ("opt/pkg/a.py", "file", b"a"),
        ("srv/data/old", "file", b"old"),
        ("../../etc/evil", "file", b"x"),
    ],
    [
        ("usr/lib/libc.so.6", "file", b"\x7fELF libc v2"),
        ("bin/tool2", "hardlink", "usr/bin/python3.13"),
        ("opt/pkg", "opaque", None),
        ("opt/pkg/b.py", "file", b"b"),
        ("srv/data", "file", b"now a file"),
        ("usr/bin/python3.13", "whiteout", None),
    ],
]
TOP: list[Entry] = [("app/main.py", "file", b"print('hi')\n"), ("srv/data", "whiteout", None)]


def _layers(tmp_path: Path, top: Sequence[Entry]) -> tuple[list[Path], list[Digest | None]]:
    paths = [write_layer(tmp_path / f"layer{i}.tar.gz", e) for i, e in enumerate(LOWER)]
    paths.append(write_layer(tmp_path / f"top-{len(top)}.tar.gz", top))
    return paths, [sha256_of(p.read_bytes()) for p in paths]


def _tree(node: _Node) -> list[object]:
    """The whole view, in the order its nodes were placed."""
    return [(name, child.entry, _tree(child)) for name, child in node.children.items()]


def _view(fs: LayerFS) -> tuple[object, ...]:
    return (_tree(fs._root), fs.anomalies, fs._count, list(fs.walk()))


def _records(cache: Path) -> list[Path]:
    return sorted((cache / "records" / "layer-views").glob("*.rec"))


def test_a_view_on_the_record_of_its_lower_layers_is_the_view_of_the_layers(tmp_path):
    cache = tmp_path / "cache"
    paths, digests = _layers(tmp_path, TOP)
    fresh = LayerFS(paths, digests)  # no cache at all
    first = LayerFS(paths, digests, index_cache=cache)  # keeps the lower view
    assert len(_records(cache)) == 1
    again = LayerFS(paths, digests, index_cache=cache)  # applies TOP on the kept view
    assert _view(again) == _view(first) == _view(fresh)
    assert again._members[:2] == [None, None]  # made on the record: no lower index loaded
    assert [a.member for a in again.anomalies] == ["../../etc/evil"]
    # The lower layers' files are read from their layers (their indexes loaded when needed).
    assert again.read_file("/lib/libc.so.6") == b"\x7fELF libc v2"
    assert again.read_file("/bin/tool2") == b"python"
    assert again.read_file("/app/main.py") == b"print('hi')\n"
    assert not again.exists("/srv/data")
    assert again.listdir("/opt/pkg") == ["b.py"]


def test_another_top_layer_reuses_the_record_and_changes_nothing_below(tmp_path):
    cache = tmp_path / "cache"
    paths, digests = _layers(tmp_path, TOP)
    LayerFS(paths, digests, index_cache=cache)
    edited: list[Entry] = [
        ("app/main.py", "file", b"print('edited')\n"),
        ("app/new.py", "file", b"n"),
    ]
    paths2, digests2 = _layers(tmp_path, edited)
    on_record = LayerFS(paths2, digests2, index_cache=cache)
    assert len(_records(cache)) == 1  # the same lower layers: the same record
    assert _view(on_record) == _view(LayerFS(paths2, digests2))
    assert on_record.read_file("/app/main.py") == b"print('edited')\n"
    assert on_record.read_file("/srv/data") == b"now a file"


def _recorded_view(
    tmp_path: Path,
) -> tuple[Path, list[Path], list[Digest | None], tuple[object, ...], Path, bytes, bytes]:
    """TOP's layers, their view made without a cache, and the one record a view made with a
    cache leaves: (cache, paths, digests, expected view, record, its header, its payload)."""
    cache = tmp_path / "cache"
    paths, digests = _layers(tmp_path, TOP)
    expected = _view(LayerFS(paths, digests))
    LayerFS(paths, digests, index_cache=cache)
    (record,) = _records(cache)
    header, _, payload = record.read_bytes().partition(b"\n")
    return cache, paths, digests, expected, record, header, payload


def test_a_damaged_or_foreign_record_is_not_used(tmp_path):
    cache, paths, digests, expected, record, header, payload = _recorded_view(tmp_path)

    # A byte changed: the checksum no longer matches.
    record.write_bytes(header + b"\n" + payload.replace(b"libc.so.6", b"libc.so.7"))
    assert _view(LayerFS(paths, digests, index_cache=cache)) == expected
    assert record.read_bytes() == header + b"\n" + payload  # made again, and kept again

    # Well formed and checksummed, but what it says does not fit these layers (another layer
    # list; a layer that is not below the top one; a depth that skips a level).
    data = json.loads(payload)
    for change in (
        lambda d: d["digests"].reverse(),
        lambda d: d["rows"][0].__setitem__(3, 2),
        lambda d: d["rows"][1].__setitem__(0, 5),
        lambda d: d["rows"].append([1]),
    ):
        altered = json.loads(payload)
        change(altered)
        assert altered != data
        _rewrite(record, header, altered)
        assert _view(LayerFS(paths, digests, index_cache=cache)) == expected
        assert record.read_bytes() == header + b"\n" + payload


def _rewrite(record: Path, header: bytes, data: object) -> None:
    """The record holding ``data`` under its own checksum (as crossdock.cache.Records writes)."""
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    head = header.rsplit(b" ", 1)[0] + b" " + hashlib.sha256(payload).hexdigest().encode()
    record.write_bytes(head + b"\n" + payload)


def test_no_record_without_the_digests_or_with_visitors(tmp_path):
    cache = tmp_path / "cache"
    paths, digests = _layers(tmp_path, TOP)
    LayerFS(paths, [*digests[:-2], None, digests[-1]], index_cache=cache)
    LayerFS(paths, digests, index_cache=cache, on_file=lambda *_: None)
    LayerFS(paths[:1], digests[:1], index_cache=cache)  # nothing below its one layer
    assert _records(cache) == []


def test_a_record_written_in_many_chunks_reads_back_whole(tmp_path, monkeypatch):
    from crossdock.rootfs import fsview

    monkeypatch.setattr(fsview, "_ROWS_PER_CHUNK", 2)
    cache = tmp_path / "cache"
    paths, digests = _layers(tmp_path, TOP)
    LayerFS(paths, digests, index_cache=cache)
    (record,) = _records(cache)
    rows = json.loads(record.read_bytes().partition(b"\n")[2])["rows"]
    assert len(rows) > 10  # many chunks of 2
    again = LayerFS(paths, digests, index_cache=cache)
    assert again._members[:2] == [None, None]  # made on the record
    assert _view(again) == _view(LayerFS(paths, digests))


def _file_row(data: dict[str, Any]) -> list[Any]:
    """The first row of a file whose content is in a layer below."""
    return next(row for row in data["rows"] if len(row) > 2 and row[7] is not None)


def _put(items: list[Any], index: int, *, to: object) -> None:
    items[index] = to


# Checksummed records of the wrong types where the view reads numbers, text and lists: each
# must count as absent (the view made from the layers, and the record written again), never
# give a view whose entries hold a float, a boolean or a list where an index or a name goes.
WRONG_VIEW_SHAPES = {
    "depth a boolean": lambda d: _put(d["rows"][0], 0, to=True),
    "layer a boolean": lambda d: _put(_file_row(d), 3, to=False),
    "layer a float": lambda d: _put(_file_row(d), 3, to=0.0),
    "content's layer a float": lambda d: _put(_file_row(d)[7], 0, to=0.0),
    "content's layer a boolean": lambda d: _put(_file_row(d)[7], 0, to=False),
    "content a 2-letter string": lambda d: _put(_file_row(d), 7, to="01"),
    "row a string": lambda d: _put(d["rows"], 0, to="12"),
    "anomaly's name a number": lambda d: _put(d["anomalies"][0], 1, to=5),
    "anomaly's reason a list": lambda d: _put(d["anomalies"][0], 2, to=["escapes"]),
    "anomaly a 3-letter string": lambda d: _put(d["anomalies"], 0, to="0ab"),
}


@pytest.mark.parametrize("shape", sorted(WRONG_VIEW_SHAPES))
def test_a_record_of_wrong_types_counts_as_absent(tmp_path, shape):
    cache, paths, digests, expected, record, header, payload = _recorded_view(tmp_path)
    altered = json.loads(payload)
    WRONG_VIEW_SHAPES[shape](altered)
    assert json.dumps(altered) != json.dumps(json.loads(payload))  # (True == 1 in Python)
    _rewrite(record, header, altered)
    assert _view(LayerFS(paths, digests, index_cache=cache)) == expected
    assert record.read_bytes() == header + b"\n" + payload  # made again, and kept again
