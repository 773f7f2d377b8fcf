"""A dependency layer written in a child (backends.inchild), as a build of several platforms
writes theirs: the same blob, index and observations as written in this process; an answer the
cache does not back is not taken."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crossdock.backends import inchild
from crossdock.backends.layerwrite import write_layer_into_cache
from crossdock.cache import CacheLayout
from crossdock.layers import entries_from_tree
from tests.support.layertar import fixture_bytes

IMAGE_DIR = "/opt/deps"


def _tree(folder: Path) -> Path:
    (folder / "pkg" / "__pycache__").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    pyc = folder / "pkg" / "__pycache__" / "__init__.cpython-313.pyc"
    pyc.write_bytes(b"\xf3\r\r\n" + bytes(12))
    (folder / "pkg" / "_native.so").write_bytes(fixture_bytes("aarch64-puts.so"))
    (folder / "bin").mkdir()
    (folder / "bin" / "tool").write_text("#!/usr/bin/python3\nprint('tool')\n")
    (folder / "bin" / "tool").chmod(0o755)
    (folder / "pkg-1.0.dist-info").mkdir()
    (folder / "pkg-1.0.dist-info" / "WHEEL").write_text("Wheel-Version: 1.0\nTag: py3-none-any\n")
    return folder


def _records(cache: Path) -> dict[str, list[str]]:
    return {
        kind: sorted(p.name for p in (cache / "records" / kind).glob("*.rec"))
        for kind in ("layer-index", "observations")
    }


def test_a_layer_written_in_a_child_is_the_layer_written_here(tmp_path):
    tree = _tree(tmp_path / "tree")
    here = write_layer_into_cache(
        entries_from_tree(tree, IMAGE_DIR, keep_bytecode=True), tmp_path / "here", mtime=7
    )
    cache = tmp_path / "child"
    there = inchild.dependency_layer_in_child(tree, IMAGE_DIR, cache, mtime=7)
    assert there is not None
    assert (there.digest, there.diff_id, there.size) == (here.digest, here.diff_id, here.size)
    assert there.path == CacheLayout(cache).blobs.path_for(there.digest)
    assert there.path.read_bytes() == here.path.read_bytes()
    # What the verify step reads instead of the layer, kept by the child as here.
    assert _records(cache) == _records(tmp_path / "here")
    assert all(_records(cache).values())
    for kind in ("layer-index", "observations"):
        for name in _records(cache)[kind]:
            assert (cache / "records" / kind / name).read_bytes() == (
                tmp_path / "here" / "records" / kind / name
            ).read_bytes()


def test_an_answer_the_cache_does_not_back_is_not_taken(tmp_path, monkeypatch):
    tree = _tree(tmp_path / "tree")
    cache = tmp_path / "cache"
    written = inchild.dependency_layer_in_child(tree, IMAGE_DIR, cache, mtime=7)
    assert written is not None
    answer = {"digest": str(written.digest), "diff_id": str(written.diff_id), "size": written.size}
    # The blob changed after the child wrote it: not the bytes its digest names.
    monkeypatch.setattr(inchild, "_answer", lambda *_: answer)
    data = written.path.read_bytes()
    written.path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
    assert inchild.dependency_layer_in_child(tree, IMAGE_DIR, cache, mtime=7) is None
    # Answers of other shapes, and a child that fails.
    for other in ({**answer, "size": "1"}, {**answer, "digest": "sha256:00"}, [answer], None):
        monkeypatch.setattr(inchild, "_answer", lambda *_, other=other: other)
        assert inchild.dependency_layer_in_child(tree, IMAGE_DIR, cache, mtime=7) is None
    monkeypatch.undo()
    # A child that fails: the cache folder cannot be written (a file stands there).
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    failed = inchild.dependency_layer_in_child(tree, IMAGE_DIR, blocked, mtime=7)
    assert failed is None


def test_the_child_refuses_an_unknown_task(capsys):
    assert inchild.main(["nothing"]) == 2
    assert "usage: python -m crossdock.backends.inchild" in capsys.readouterr().err


def test_a_child_ended_by_sigterm_leaves_no_temporary_files(tmp_path):
    """crossdock's interrupt ends its children with SIGTERM: an unfinished layer's files go."""
    tree = tmp_path / "tree"
    (tree / "data").mkdir(parents=True)
    for n in range(64):  # enough to be stopped while writing
        (tree / "data" / f"{n}.bin").write_bytes(os.urandom(1 << 20))
    cache = tmp_path / "cache"
    request = {"tree": str(tree), "image_dir": IMAGE_DIR, "cache_dir": str(cache), "mtime": 0}
    child = subprocess.Popen(
        [sys.executable, "-m", "crossdock.backends.inchild", "dependency-layer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdin is not None
    child.stdin.write(json.dumps(request).encode())
    child.stdin.close()
    work = CacheLayout(cache).work
    deadline = time.monotonic() + 60
    while not any(work.rglob("*")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert child.poll() is None, "the child ended before it was stopped"
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=60)
    assert not list(work.rglob("*"))
    assert child.returncode == 128 + signal.SIGTERM


def test_a_child_writes_only_a_layer_large_enough_to_pay_for_its_start(tmp_path):
    tree = _tree(tmp_path / "tree")  # a few KiB: written in the build's own process
    assert not inchild.worth_a_child(tree)
    # A link to something large is a link in the layer: its target's size does not count.
    large = tmp_path / "large.bin"
    with large.open("wb") as out:
        out.truncate(64 << 20)  # sparse: its size without the disk
    (tree / "pkg" / "link.bin").symlink_to(large)
    assert not inchild.worth_a_child(tree)
    (tree / "pkg" / "data.bin").write_bytes(b"")
    with (tree / "pkg" / "data.bin").open("r+b") as out:
        out.truncate(40 << 20)
    assert inchild.worth_a_child(tree)
