import gzip
import io
import tarfile
import threading

import pytest
from isal import igzip

from crossdock.image import sha256_of
from crossdock.layers import LayerEntry, compress_layer, entries_from_tree, write_layer
from crossdock.rootfs.layerindex import read_index


def _tree(root):
    (root / "app" / "pkg").mkdir(parents=True)
    (root / "app" / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "app" / "pkg" / "__pycache__").mkdir()
    (root / "app" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"host")
    (root / "app" / "run.sh").write_text("#!/bin/sh\n")
    (root / "app" / "run.sh").chmod(0o700)
    (root / "app" / "tests").mkdir()
    (root / "app" / "tests" / "test_x.py").write_text("")
    (root / "app" / "link").symlink_to("pkg/mod.py")
    return root / "app"


def test_layer_is_reproducible_and_normalized(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    src = _tree(tmp_path)
    first = write_layer(entries_from_tree(src, "/srv", exclude=["tests"]), tmp_path / "a.tar.gz")
    # Same files, different on-disk times and listing order: same bytes.
    (src / "pkg" / "mod.py").touch()
    entries = list(entries_from_tree(src, "/srv", exclude=["tests"]))[::-1]
    second = write_layer(entries, tmp_path / "b.tar.gz")
    assert first.digest == second.digest
    assert first.diff_id == second.diff_id
    data = (tmp_path / "a.tar.gz").read_bytes()
    assert sha256_of(data) == first.digest
    assert first.size == len(data)
    assert sha256_of(gzip.decompress(data)) == first.diff_id
    # gzip header: no file name flag, mtime 0
    assert data[3] & 0x08 == 0
    assert data[4:8] == b"\0\0\0\0"

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == ["srv", "srv/link", "srv/pkg", "srv/pkg/mod.py", "srv/run.sh"]
    for member in members.values():
        assert (member.uid, member.gid, member.uname, member.gname, member.mtime) == (
            0,
            0,
            "",
            "",
            0,
        )
    assert members["srv/run.sh"].mode == 0o755
    assert members["srv/pkg/mod.py"].mode == 0o644
    assert members["srv"].isdir()
    assert members["srv/link"].issym()
    assert members["srv/link"].linkname == "pkg/mod.py"


def test_source_date_epoch_sets_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    blob = write_layer([LayerEntry("a.txt", data=b"a")], tmp_path / "l.tar.gz")
    with tarfile.open(blob.path) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}


def test_refuses_paths_escaping_the_root(tmp_path):
    with pytest.raises(ValueError, match="escapes"):
        write_layer([LayerEntry("../etc/passwd", data=b"x")], tmp_path / "l.tar.gz")
    assert not (tmp_path / "l.tar.gz").exists()
    assert list(tmp_path.iterdir()) == []


def test_long_paths_round_trip(tmp_path):
    long_name = "/".join(["d" * 60] * 4) + "/file.py"
    blob = write_layer([LayerEntry(long_name, data=b"ok")], tmp_path / "l.tar.gz")
    with tarfile.open(blob.path) as tar:
        member = tar.getmember(long_name)
        handle = tar.extractfile(member)
        assert handle is not None
        assert handle.read() == b"ok"


def test_compress_layer_gzips_a_saved_tar_as_write_layer_would(tmp_path):
    """A tar someone else wrote (docker save's layers): the blob is its gzip, byte for byte
    what write_layer makes of the same tar stream, and its diff_id is the tar's own digest."""
    written = write_layer([LayerEntry("srv/a.txt", data=b"hello\n")], tmp_path / "w.tar.gz")
    plain = tmp_path / "layer.tar"
    plain.write_bytes(gzip.decompress((tmp_path / "w.tar.gz").read_bytes()))
    blob = compress_layer(plain, tmp_path / "c.tar.gz")
    assert blob.diff_id == sha256_of(plain.read_bytes()) == written.diff_id
    assert blob.digest == written.digest
    data = (tmp_path / "c.tar.gz").read_bytes()
    assert sha256_of(data) == blob.digest and blob.size == len(data)
    assert gzip.decompress(data) == plain.read_bytes()


def test_the_index_taken_while_writing_equals_the_index_read_back(tmp_path):
    """What the verify step takes instead of decompressing a layer it just wrote: every row
    (name, path, type, mode, size, link, data offset) as reading the blob gives it, through
    directories, symlinks, executables, empty files, sizes at block boundaries, a PAX long
    name, inline data and a non-ASCII name."""
    src = _tree(tmp_path)
    deep = src / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / "long-name.py").write_text("y = 2\n")
    for size in (0, 1, 511, 512, 513, 1024, 70_000):
        (src / f"size-{size}.bin").write_bytes(
            bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        )
    (src / "café.txt").write_text("crème\n")
    entries = [
        *entries_from_tree(src, "/srv", keep_bytecode=True),
        LayerEntry("etc/inline.conf", data=b"inline\n"),
        LayerEntry("srv/bin/tool", data=b"#!/bin/sh\n", executable=True),
        LayerEntry("srv/current", symlink="/srv/pkg"),
    ]
    blob = write_layer(entries, tmp_path / "layer.tar.gz")
    assert blob.members is not None
    read_back = read_index(blob.path).members
    assert list(blob.members) == read_back
    assert {m.type for m in read_back} == {"f", "d", "l"}
    assert any(len(m.name) > 100 for m in read_back)  # a PAX header before it


def test_a_compressed_foreign_tar_has_no_written_index(tmp_path):
    tar_path = tmp_path / "layer.tar"
    with tarfile.open(tar_path, "w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    assert compress_layer(tar_path, tmp_path / "layer.tar.gz").members is None


def test_the_compressor_sees_tarfiles_records_as_written(tmp_path):
    """isal's output depends on how its input is cut into writes, so a layer is exactly the gzip
    of its tar fed in tarfile's 10 KiB records: a writer that buffered or split them would
    change every digest (and does: fed in 1 MiB pieces, the same tar compresses otherwise)."""
    words = [f"{n:x}-{n * n % 977}".encode() for n in range(400)]
    entries = [
        LayerEntry(f"srv/f{i}.txt", data=b" ".join(words[(i * 7) % 50 :] * 40)) for i in range(40)
    ]
    blob = write_layer(entries, tmp_path / "layer.tar.gz", mtime=0)
    tar = gzip.decompress((tmp_path / "layer.tar.gz").read_bytes())

    def gzipped(piece: int) -> bytes:
        out = io.BytesIO()
        with igzip.GzipFile(filename="", mode="wb", compresslevel=2, fileobj=out, mtime=0) as gz:
            for start in range(0, len(tar), piece):
                gz.write(tar[start : start + piece])
        return out.getvalue()

    assert sha256_of(gzipped(tarfile.RECORDSIZE)) == blob.digest
    assert sha256_of(gzipped(1 << 20)) != blob.digest


def test_the_tar_stream_is_what_tarfile_writes_for_the_same_headers(tmp_path):
    """write_layer makes the tar stream itself (tarfile's headers, the files read in large
    pieces): byte for byte the stream tarfile.open(mode="w|", format=PAX_FORMAT) writes for the
    same members, through empty files, block and record boundaries, a file larger than one read
    piece, PAX long and non-ASCII names, symlinks and directories."""
    src = tmp_path / "src"
    src.mkdir()
    sizes = (0, 1, 511, 512, 513, 10_239, 10_240, 10_241, (1 << 20) + 7, 3 * (1 << 20))
    for size in sizes:
        (src / f"size-{size}.bin").write_bytes((bytes(range(251)) * (size // 251 + 1))[:size])
    deep = src / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / "long-name.py").write_text("y = 2\n")
    (src / "café.txt").write_text("crème\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "link").symlink_to("run.sh")
    blob = write_layer(entries_from_tree(src, "/srv"), tmp_path / "l.tar.gz", mtime=1234)

    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for member in read_index(blob.path).members:
            info = tarfile.TarInfo(member.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 1234, 0, 0, "", ""
            info.mode = member.mode
            if member.type == "d":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif member.type == "l":
                info.type, info.linkname = tarfile.SYMTYPE, member.linkname
                tar.addfile(info)
            else:
                source = src / member.name.removeprefix("srv/")
                info.size = source.stat().st_size
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
    written = gzip.decompress(blob.path.read_bytes())
    assert written == expected.getvalue()
    assert len(written) % tarfile.RECORDSIZE == 0
    assert sha256_of(written) == blob.diff_id


def test_a_compressor_failure_is_raised_and_leaves_no_thread_behind(tmp_path):
    """The tar is made on the calling thread and compressed on another: an error there (a full
    disk, say) is raised to the caller, nothing is left behind, and the thread has ended."""
    from crossdock.layers import _HashingHandover

    class FailingSink:
        def __init__(self) -> None:
            self.writes = 0

        def write(self, data: bytes) -> int:
            self.writes += 1
            if self.writes == 3:
                raise OSError(28, "No space left on device")
            return len(data)

        def flush(self) -> None:
            pass

    sink = FailingSink()
    handover = _HashingHandover(sink)
    with pytest.raises(OSError, match="No space left"):
        for _ in range(400):  # 4 MiB: several batches, so the error is seen on a write
            handover.write(b"x" * 10_240)
        handover.close()
    handover.abandon()
    assert not any(t.name == "layer-compress" and t.is_alive() for t in threading.enumerate())
    assert sink.writes == 3  # nothing was written after the failure


def test_a_failed_layer_leaves_no_file_and_no_thread(tmp_path):
    entries = [LayerEntry("srv/a.txt", data=b"a"), LayerEntry("srv/../../escape", data=b"x")]
    with pytest.raises(ValueError, match="escapes"):
        write_layer(entries, tmp_path / "l.tar.gz")
    assert list(tmp_path.iterdir()) == []
    assert not any(t.name == "layer-compress" and t.is_alive() for t in threading.enumerate())
