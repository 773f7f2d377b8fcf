from __future__ import annotations

import pytest

from crossdock.errors import UnsafeContentError
from crossdock.rootfs.fsview import EntryKind, LayerFS, LazyBuffer, normalize
from tests.support.layertar import write_layer


def _fs(tmp_path, *layers, gzipped=True):
    paths = [
        write_layer(tmp_path / f"layer{i}.tar", entries, gzipped=gzipped)
        for i, entries in enumerate(layers)
    ]
    return LayerFS(paths)


def test_normalize_keeps_paths_inside_the_root():
    assert normalize("./usr//lib/../lib/x.so") == "/usr/lib/x.so"
    assert normalize("/abs/path") == "/abs/path"
    assert normalize("../etc/passwd") is None
    assert normalize("usr/../../etc") is None


def test_later_layers_win_and_whiteouts_delete(tmp_path):
    fs = _fs(
        tmp_path,
        [
            ("usr", "dir", None),
            ("usr/a.txt", "file", b"lower a"),
            ("usr/b.txt", "file", b"lower b"),
            ("usr/keep.txt", "file", b"keep"),
        ],
        [("usr/a.txt", "file", b"upper a"), ("usr/b.txt", "whiteout", None)],
    )
    assert fs.listdir("/usr") == ["a.txt", "keep.txt"]
    assert fs.read_file("/usr/a.txt") == b"upper a"
    assert fs.get("/usr/a.txt").layer.index == 1
    assert fs.get("/usr/keep.txt").layer.index == 0
    assert not fs.exists("/usr/b.txt")


def test_whiteout_applies_to_lower_layers_only(tmp_path):
    # The same layer re-creates the path it whites out (tar order: file first, whiteout after).
    fs = _fs(
        tmp_path,
        [("etc/conf", "file", b"old")],
        [("etc/conf", "file", b"new"), ("etc/conf", "whiteout", None)],
    )
    assert fs.read_file("/etc/conf") == b"new"


def test_opaque_directory_hides_lower_children_only(tmp_path):
    fs = _fs(
        tmp_path,
        [("app", "dir", None), ("app/old.py", "file", b"old"), ("app/sub/x", "file", b"x")],
        [("app", "opaque", None), ("app/new.py", "file", b"new")],
    )
    assert fs.listdir("/app") == ["new.py"]
    assert fs.get("/app").kind is EntryKind.DIRECTORY


def test_deleting_a_directory_removes_its_subtree(tmp_path):
    fs = _fs(
        tmp_path,
        [("opt/pkg/lib/x.so", "file", b"\x7fELF"), ("opt/other", "file", b"o")],
        [("opt/pkg", "whiteout", None)],
    )
    assert not fs.exists("/opt/pkg/lib/x.so")
    assert fs.listdir("/opt") == ["other"]


def test_file_replacing_a_directory_and_back(tmp_path):
    fs = _fs(
        tmp_path,
        [("srv/data/a", "file", b"a")],
        [("srv/data", "file", b"now a file")],
        [("srv/data/b", "file", b"b")],
    )
    assert fs.listdir("/srv/data") == ["b"]


def test_symlinks_resolve_inside_the_root(tmp_path):
    fs = _fs(
        tmp_path,
        [
            ("usr/lib/aarch64-linux-gnu/libc.so.6", "file", b"libc"),
            ("lib", "symlink", "usr/lib"),
            ("usr/bin/python3.13", "file", b"py"),
            ("usr/bin/python3", "symlink", "python3.13"),
            ("escape", "symlink", "../../../../usr/bin/python3"),
            ("abs", "symlink", "/usr/lib"),
            ("loop1", "symlink", "loop2"),
            ("loop2", "symlink", "loop1"),
            ("dangling", "symlink", "/nowhere"),
        ],
    )
    assert fs.resolve("/lib/aarch64-linux-gnu/libc.so.6") == "/usr/lib/aarch64-linux-gnu/libc.so.6"
    assert fs.read_file("/lib/aarch64-linux-gnu/libc.so.6") == b"libc"
    assert fs.resolve("/usr/bin/python3") == "/usr/bin/python3.13"
    # ".." above the root stays at the root, as in a chroot: the link cannot leave the image.
    assert fs.resolve("/escape") == "/usr/bin/python3.13"
    assert fs.listdir("/abs/aarch64-linux-gnu") == ["libc.so.6"]
    assert fs.resolve("/loop1") is None
    assert fs.resolve("/dangling") is None
    assert fs.get("/usr/bin/python3", follow=False).kind is EntryKind.SYMLINK


def test_member_names_that_escape_are_reported_not_indexed(tmp_path):
    fs = _fs(tmp_path, [("../../etc/evil", "file", b"x"), ("ok", "file", b"ok")])
    assert not fs.exists("/etc/evil")
    assert [a.member for a in fs.anomalies] == ["../../etc/evil"]
    assert fs.read_file("/ok") == b"ok"


def test_hardlinks_share_content_even_across_layers(tmp_path):
    fs = _fs(
        tmp_path,
        [("bin/tool", "file", b"tool bytes")],
        [("bin/tool2", "hardlink", "bin/tool"), ("bin/tool", "whiteout", None)],
    )
    assert not fs.exists("/bin/tool")
    assert fs.read_file("/bin/tool2") == b"tool bytes"
    assert fs.get("/bin/tool2").layer.index == 1


def test_iter_files_streams_only_wanted_files_and_layers(tmp_path):
    fs = _fs(
        tmp_path,
        [("a/x.pyc", "file", b"lower"), ("a/y.txt", "file", b"y")],
        [("a/x.pyc", "file", b"upper pyc"), ("a/z.pyc", "file", b"z")],
        gzipped=False,
    )
    seen = {c.entry.path: c.data.read() for c in fs.iter_files(lambda e: e.path.endswith(".pyc"))}
    assert seen == {"/a/x.pyc": b"upper pyc", "/a/z.pyc": b"z"}
    # Or given some of file_groups' groups (no second walk): just those, with their bytes.
    groups = fs.file_groups(lambda e: e.path.endswith(".pyc"))
    wanted = {
        content: entries for content, entries in groups.items() if entries[0].path == "/a/z.pyc"
    }
    assert {c.entry.path: c.data.read() for c in fs.iter_files(groups=wanted)} == {"/a/z.pyc": b"z"}


def test_lazy_buffer_is_seekable_and_bounded(tmp_path):
    import io

    buffer = LazyBuffer(io.BytesIO(b"0123456789" * 10), size=100, limit=50)
    assert buffer.head(4) == b"0123"
    buffer.seek(20)
    assert buffer.read(5) == b"01234"
    buffer.seek(-3, io.SEEK_END)  # reports the known size without reading to the end
    assert buffer.tell() == 97
    with pytest.raises(UnsafeContentError):
        buffer.read(3)
