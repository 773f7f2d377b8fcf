"""The cache folder module: records that are ignored when damaged, foreign or of another format,
and blobs that are re-verified whenever their file changed (even to the same size)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from crossdock import cache as cache_module
from crossdock.cache import BlobCache, CacheLayout, Records
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.mediatypes import MediaType
from crossdock.rootfs.baseprofile import BaseProfile


def _records(tmp_path: Path, version: int = 1) -> Records:
    return CacheLayout(tmp_path).records("facts", version=version)


def test_a_record_round_trips_and_lives_where_the_layout_says(tmp_path):
    records = _records(tmp_path)
    assert records.store("key-1", {"a": [1, 2]})
    assert records.load("key-1", dict) == {"a": [1, 2]}
    assert records.path_for("key-1") == tmp_path / "records" / "facts" / "key-1.rec"
    assert records.load("absent", dict) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],
        lambda data: data.replace(b"[1,2]", b"[1,3]"),
        lambda data: data.replace(b"facts/1 ", b"facts/0 "),
        lambda _data: b"",
        lambda _data: b"\xff\xfe garbage",
    ],
    ids=["truncated", "flipped", "other-version", "empty", "garbage"],
)
def test_a_damaged_record_is_ignored(tmp_path, damage):
    records = _records(tmp_path)
    records.store("key-1", {"a": [1, 2]})
    path = records.path_for("key-1")
    damaged = damage(path.read_bytes())
    assert damaged != path.read_bytes()
    path.write_bytes(damaged)
    assert records.load("key-1", dict) is None
    records.store("key-1", {"a": [1, 2]})  # rebuilt
    assert records.load("key-1", dict) == {"a": [1, 2]}


def test_a_record_copied_under_another_key_or_read_as_another_version_is_foreign(tmp_path):
    records = _records(tmp_path)
    records.store("one", [1])
    shutil.copy(records.path_for("one"), records.path_for("two"))
    assert records.load("two", list) is None
    assert _records(tmp_path, version=2).load("one", list) is None


def test_a_payload_the_parser_rejects_counts_as_absent(tmp_path):
    # A base-profile record with a valid checksum but the wrong shape (an older crossdock, or a
    # hand edit that recomputed the checksum): ignored, not a traceback.
    records = _records(tmp_path)
    bad: object
    for bad in ([], {"schema": 1}, {"schema": "nope"}, "text", 5):
        records.store("profile", bad)
        assert records.load("profile", BaseProfile.from_json) is None


def test_record_keys_are_plain_names(tmp_path):
    with pytest.raises(ValueError, match="plain name"):
        _records(tmp_path).path_for("../escape")


def _blob(tmp_path: Path, data: bytes) -> tuple[BlobCache, Descriptor]:
    cache = CacheLayout(tmp_path / "cache").blobs
    digest = Digest("sha256:" + hashlib.sha256(data).hexdigest())
    source = tmp_path / "written"
    source.write_bytes(data)
    cache.adopt(source, digest)
    return cache, Descriptor(MediaType.OCI_LAYER_GZIP, digest, len(data))


def test_a_blob_changed_in_place_with_its_size_unchanged_is_fetched_again(tmp_path):
    cache, desc = _blob(tmp_path, b"the real layer bytes")
    path = cache.path_for(desc.digest)
    assert cache.verified(desc.digest, desc.size) == path
    before = path.stat()
    path.write_bytes(b"the fake layer bytes")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with the old mtime
    downloads: list[Descriptor] = []

    def download(d: Descriptor, dest: Path) -> None:
        downloads.append(d)
        dest.write_bytes(b"the real layer bytes")

    assert cache.ensure(desc, download) == path
    assert downloads == [desc]
    assert path.read_bytes() == b"the real layer bytes"
    assert cache.ensure(desc, download) == path  # stamped again: no second download
    assert downloads == [desc]


def test_a_blob_restored_from_elsewhere_is_hashed_before_use(tmp_path):
    cache, desc = _blob(tmp_path, b"layer")
    path = cache.path_for(desc.digest)
    # A cache restored by copying (a CI cache): new inode, new times. Right bytes: kept.
    copy = path.with_name("copy")
    shutil.copy(path, copy)
    copy.replace(path)
    assert cache.has(desc)
    # Wrong bytes under the same name and size: dropped.
    wrong = path.with_name("wrong")
    wrong.write_bytes(b"LAYER")
    wrong.replace(path)
    assert not cache.has(desc)
    assert cache.verified(desc.digest) is None  # still absent: the damage is not stamped
    # Writing the blob again replaces the damaged file.
    again = tmp_path / "again"
    again.write_bytes(b"layer")
    assert cache.adopt(again, desc.digest) == path
    assert path.read_bytes() == b"layer"
    assert cache.has(desc)


def test_a_reader_that_finds_a_damaged_blob_never_removes_the_one_written_meanwhile(
    tmp_path, monkeypatch
):
    # The race CI met: two platforms write the same app layer into a cache whose copy of it
    # is damaged. One hashes the damaged file; meanwhile the other finds it damaged too and
    # puts its own good copy in place. The first must not then delete that good copy.
    cache, desc = _blob(tmp_path, b"the app layer")
    path = cache.path_for(desc.digest)
    damaged = path.with_name("damaged")
    damaged.write_bytes(b"THE APP LAYER")
    damaged.replace(path)
    real_digest = cache_module.file_digest
    concurrent: list[Path] = []
    interleaved = False

    def digest_while_another_writer_adopts(file: Path, algorithm: str) -> tuple[str, int]:
        nonlocal interleaved
        with file.open("rb") as stream:  # this reader has the damaged file open ...
            if not interleaved:
                interleaved = True
                other = tmp_path / "other-platform"
                other.write_bytes(b"the app layer")
                concurrent.append(cache.adopt(other, desc.digest))  # ... the other adopts
            data = stream.read()
        return hashlib.new(algorithm, data).hexdigest(), len(data)

    monkeypatch.setattr(cache_module, "file_digest", digest_while_another_writer_adopts)
    assert cache.verified(desc.digest) is None  # what this reader hashed was damaged ...
    assert concurrent == [path]
    assert path.read_bytes() == b"the app layer"  # ... and the other's copy is still there
    monkeypatch.setattr(cache_module, "file_digest", real_digest)
    assert cache.has(desc)
    mine = tmp_path / "this-platform"
    mine.write_bytes(b"the app layer")
    assert cache.adopt(mine, desc.digest) == path
    assert not mine.exists()


def test_a_blob_that_vanishes_while_it_is_checked_is_absent_not_an_error(tmp_path, monkeypatch):
    cache, desc = _blob(tmp_path, b"layer")
    path = cache.path_for(desc.digest)
    restored = path.with_name("restored")
    shutil.copy(path, restored)
    restored.replace(path)  # a new identity: the next use hashes it

    def vanished(file: Path, algorithm: str) -> tuple[str, int]:
        raise FileNotFoundError(2, "No such file or directory", str(file))

    monkeypatch.setattr(cache_module, "file_digest", vanished)
    assert cache.verified(desc.digest, desc.size) is None


def test_adopting_a_blob_that_is_cached_keeps_the_cached_copy(tmp_path):
    cache, desc = _blob(tmp_path, b"layer")
    again = tmp_path / "again"
    again.write_bytes(b"layer")
    assert cache.adopt(again, desc.digest) == cache.path_for(desc.digest)
    assert not again.exists()


def test_load_or_store_makes_once_and_makes_again_when_the_record_is_damaged(
    tmp_path: Path,
) -> None:
    records = Records(tmp_path / "records", kind="facts", version=1)
    made: list[int] = []

    def parse(data: dict[str, int]) -> dict[str, int]:
        return dict(data)

    def make() -> dict[str, int]:
        made.append(1)
        return {"n": len(made)}

    first = records.load_or_store("k", parse, make, parse)
    second = records.load_or_store("k", parse, make, parse)
    assert (first, second, len(made)) == ({"n": 1}, {"n": 1}, 1)
    path = records.path_for("k")
    path.write_bytes(path.read_bytes().replace(b'"n":1', b'"n":9'))  # checksum no longer matches
    assert records.load_or_store("k", parse, make, parse) == {"n": 2}


def test_a_digest_dashed_is_a_file_name_and_the_referrers_tag_schema() -> None:
    digest = Digest("sha256:" + "ab" * 32)
    assert digest.dashed == "sha256-" + "ab" * 32


def _load_on_a_thread(records: Records, key: str, path: Path) -> list[object]:
    """``records.load(key)`` on a thread; a read that blocks (a FIFO) fails the test instead of
    hanging it, and is then let go by opening the FIFO's other end."""
    outcome: list[object] = []

    def load() -> None:
        try:
            outcome.append(records.load(key, list))
        except BaseException as err:  # noqa: BLE001 - reported by the caller
            outcome.append(err)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive() and stat.S_ISFIFO(path.lstat().st_mode):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(30)
    return outcome if outcome else ["still reading"]


def test_a_record_that_is_not_a_small_regular_file_is_absent_without_reading_it(tmp_path):
    # The cache may be shared: a record replaced by a FIFO blocked every build in open(), one
    # nested past the recursion limit (checksum recomputed) escaped as a RecursionError, and
    # one pointing at a device or a huge file was read whole.
    records = _records(tmp_path)
    records.store("key-1", [1])
    path = records.path_for("key-1")
    payload = b"[" * 100_000
    header = f"crossdock-record facts/1 key-1 {hashlib.sha256(payload).hexdigest()}\n"
    path.write_bytes(header.encode() + payload)
    assert _load_on_a_thread(records, "key-1", path) == [None]
    path.unlink()
    os.mkfifo(path)
    assert _load_on_a_thread(records, "key-1", path) == [None]
    path.unlink()
    with path.open("wb") as big:
        big.truncate(cache_module.MAX_RECORD_BYTES + 1)  # sparse: no disk used
    assert records.load("key-1", list) is None
    path.unlink()
    assert records.store("key-1", [1])
    assert records.load("key-1", list) == [1]
