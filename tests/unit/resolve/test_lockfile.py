# uv.lock lines are as long as the lock writes them.
# ruff: noqa: E501
from __future__ import annotations

from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from crossdock.errors import LockError, ResolveError
from crossdock.platform import AMD64, ARM64
from crossdock.resolve.lockfile import Availability, classify, lookup, parse_lock, read_lock
from crossdock.wheeltags import wheel_target

# A package index of our own naming: what is read is the file name, never the host.
INDEX = "https://packages.example.test/simple"
FILES = "https://files.example.test/packages/00/00"

# Handwritten in uv.lock's layout (version 1, revision 3): one package per case.
LOCK = f'''
version = 1
revision = 3
requires-python = ">=3.13"

[[package]]
name = "service"
version = "0.1.0"
source = {{ virtual = "." }}

[[package]]
name = "Native_Both"
version = "2.5.5"
source = {{ registry = "{INDEX}" }}
sdist = {{ url = "{FILES}/native_both-2.5.5.tar.gz", hash = "sha256:aa", size = 10 }}
wheels = [
    {{ url = "{FILES}/native_both-2.5.5-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", hash = "sha256:bb", size = 5 }},
    {{ url = "{FILES}/native_both-2.5.5-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", hash = "sha256:cc", size = 5 }},
]

[[package]]
name = "amd64-only"
version = "1.0"
source = {{ registry = "{INDEX}" }}
wheels = [
    {{ url = "{FILES}/amd64_only-1.0-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", hash = "sha256:dd" }},
    {{ url = "{FILES}/amd64_only-1.0-cp313-cp313-musllinux_1_2_aarch64.whl", hash = "sha256:ee" }},
]

[[package]]
name = "pure"
version = "3.20"
source = {{ registry = "{INDEX}" }}
sdist = {{ url = "{FILES}/pure-3.20.tar.gz", hash = "sha256:ff", size = 7 }}
wheels = [{{ url = "{FILES}/pure-3.20-py3-none-any.whl", hash = "sha256:11" }}]

[[package]]
name = "docopt"
version = "0.6.2"
source = {{ registry = "{INDEX}" }}
sdist = {{ url = "{FILES}/docopt-0.6.2.tar.gz", hash = "sha256:49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491", size = 25901 }}

[[package]]
name = "old-cp312"
version = "0.1"
source = {{ registry = "{INDEX}" }}
sdist = {{ url = "{FILES}/old_cp312-0.1.tar.gz", hash = "sha256:22" }}
wheels = [{{ url = "{FILES}/old_cp312-0.1-cp312-cp312-manylinux_2_17_aarch64.whl", hash = "sha256:33" }}]

[[package]]
name = "from-git"
version = "0.2"
source = {{ git = "https://example.org/x.git?rev=abc#abc" }}
'''


@pytest.fixture
def packages():
    return parse_lock(LOCK, Path("uv.lock"))


ARM64_TARGET = wheel_target(ARM64, "2.41", "3.13")
AMD64_TARGET = wheel_target(AMD64, "2.41", "3.13")


def test_parse_reads_names_versions_sources_and_files(packages):
    native = packages["native-both", "2.5.5"]  # names are normalized
    assert native.source_kind == "registry"
    assert native.sdist is not None
    assert native.sdist.filename == "native_both-2.5.5.tar.gz"
    assert native.sdist.sha256 == "aa"
    assert native.sdist.size == 10
    assert len(native.wheels) == 2
    assert packages["service", "0.1.0"].source_kind == "virtual"
    assert packages["docopt", "0.6.2"].wheels == ()
    # Local sources name their folder (what uv reads their requirements from); others none.
    assert packages["service", "0.1.0"].source_path == "."
    assert native.source_path is None


@pytest.mark.parametrize(
    ("name", "version", "arm64", "amd64"),
    [
        ("native-both", "2.5.5", Availability.WHEEL, Availability.WHEEL),
        ("pure", "3.20", Availability.WHEEL, Availability.WHEEL),
        ("docopt", "0.6.2", Availability.SDIST_ONLY, Availability.SDIST_ONLY),
        ("old-cp312", "0.1", Availability.SDIST_ONLY, Availability.SDIST_ONLY),
    ],
)
def test_classify(packages, name, version, arm64, amd64):
    assert classify(packages[name, version], ARM64_TARGET) is arm64
    assert classify(packages[name, version], AMD64_TARGET) is amd64


def test_a_package_with_neither_wheel_nor_sdist_names_package_version_platform_options(packages):
    package = packages["amd64-only", "1.0"]
    assert classify(package, AMD64_TARGET) is Availability.WHEEL
    with pytest.raises(ResolveError) as caught:
        classify(package, ARM64_TARGET)
    text = str(caught.value)
    assert "amd64-only 1.0" in text
    assert "linux/arm64/v8" in text
    assert "aarch64-manylinux_2_40" in text
    assert "pin a version" in text
    assert "buildx" in text


def test_a_glibc_too_old_for_the_wheels_falls_back_to_the_sdist(packages):
    old_base = wheel_target(ARM64, "2.17", "3.13")  # the wheels need glibc 2.28
    assert classify(packages["native-both", "2.5.5"], old_base) is Availability.SDIST_ONLY


def test_git_sources_are_refused_clearly(packages):
    with pytest.raises(ResolveError, match=r"from-git 0\.2 comes from a git source"):
        classify(packages["from-git", "0.2"], ARM64_TARGET)


def test_missing_lock_says_run_uv_lock(tmp_path):
    with pytest.raises(LockError) as caught:
        read_lock(tmp_path)
    assert str(tmp_path / "uv.lock") in str(caught.value)
    assert caught.value.hint == f"run `uv lock` in {tmp_path}"


def test_unknown_lock_version_and_bad_toml_are_lock_errors():
    with pytest.raises(LockError, match="lock format version 2"):
        parse_lock("version = 2\n", Path("uv.lock"))
    with pytest.raises(LockError, match="not valid TOML"):
        parse_lock("version = = 1\n", Path("uv.lock"))


def test_lookup_refuses_an_export_the_lock_does_not_know(packages):
    assert (
        lookup(packages, [(canonicalize_name("pure"), "3.20")], Path("uv.lock"))[0].version
        == "3.20"
    )
    with pytest.raises(LockError, match="no entry for pure==9"):
        lookup(packages, [(canonicalize_name("pure"), "9")], Path("uv.lock"))


def test_a_recorded_lock_reads_back_as_parsed_and_a_changed_or_damaged_one_is_parsed(tmp_path):
    from crossdock.cache import CacheLayout

    records = CacheLayout(tmp_path / "cache").records("parsed-locks", version=1)
    (tmp_path / "uv.lock").write_text(LOCK)
    parsed = parse_lock(LOCK, tmp_path / "uv.lock")
    assert read_lock(tmp_path, records) == parsed  # parsed, and recorded
    [record] = list((tmp_path / "cache" / "records" / "parsed-locks").iterdir())
    again = read_lock(tmp_path, records)  # from the record
    assert again == parsed
    assert list(again) == list(parsed)  # in the lock's order, each package's wheels too
    for key, package in again.items():
        assert list(package.wheel_sha256.items()) == list(parsed[key].wheel_sha256.items())
    # A changed lock is another key: parsed, not answered from the first record.
    edited = LOCK.replace('version = "2.5.5"', 'version = "2.5.6"')
    assert edited != LOCK
    (tmp_path / "uv.lock").write_text(edited)
    assert read_lock(tmp_path, records) == parse_lock(edited, tmp_path / "uv.lock")
    # A damaged record is ignored: the lock is parsed again.
    (tmp_path / "uv.lock").write_text(LOCK)
    record.write_bytes(record.read_bytes().replace(b'"docopt"', b'"docoxt"'))
    assert read_lock(tmp_path, records) == parsed


def _wrong(rows, index, field, value):
    """``rows`` (a parsed-locks record's payload) with row ``index``'s ``field`` set to ``value``
    (``field`` None: the whole row)."""
    import copy

    changed = copy.deepcopy(rows)
    if field is None:
        changed[index] = value
    else:
        changed[index][field] = value
    return changed


# Row fields, as _package_record writes them: name, version, source_kind, sdist (url, path,
# sha256, size), wheels, wheel_sha256 ([wheel, digest] pairs), source_path. Row 1 is native-both.
_WRONG_SHAPES = {
    "payload an object": lambda rows: {"abcdefg": rows},
    "payload a string": lambda _rows: "abcdefg",
    "payload null": lambda _rows: None,
    "row a 7-letter string": lambda rows: _wrong(rows, 1, None, "abcdefg"),
    "row an object of 7 keys": lambda rows: _wrong(
        rows, 1, None, dict.fromkeys(["a", "b", "c", "d", "e", "f", "g"], "x")
    ),
    "row of 6 fields": lambda rows: _wrong(rows, 1, None, rows[1][:6]),
    "row nested once more": lambda rows: _wrong(rows, 1, None, [rows[1]]),
    "name a number": lambda rows: _wrong(rows, 1, 0, 5),
    "name nested in a list": lambda rows: _wrong(rows, 1, 0, ["native-both"]),
    "name not normalized": lambda rows: _wrong(rows, 1, 0, "Native_Both"),
    "version a number": lambda rows: _wrong(rows, 1, 1, 2.55),
    "source kind a number": lambda rows: _wrong(rows, 1, 2, 1),
    "sdist a 4-letter string": lambda rows: _wrong(rows, 1, 3, "abcd"),
    "sdist an object of 4 keys": lambda rows: _wrong(
        rows, 1, 3, {"url": "u", "path": None, "sha256": "aa", "size": 10}
    ),
    "sdist size a string": lambda rows: _wrong(rows, 1, 3, [*rows[1][3][:3], "10"]),
    "sdist size a boolean": lambda rows: _wrong(rows, 1, 3, [*rows[1][3][:3], True]),
    "sdist url a number": lambda rows: _wrong(rows, 1, 3, [5, *rows[1][3][1:]]),
    "sdist of 3 fields": lambda rows: _wrong(rows, 1, 3, rows[1][3][:3]),
    "wheels a string": lambda rows: _wrong(rows, 1, 4, rows[1][4][0]),
    "wheels numbers": lambda rows: _wrong(rows, 1, 4, [1, 2]),
    "wheel digests an object": lambda rows: _wrong(rows, 1, 5, {"ab": "cd"}),
    "wheel digests 2-letter strings": lambda rows: _wrong(rows, 1, 5, ["ab", "cd"]),
    "wheel digest a number": lambda rows: _wrong(rows, 1, 5, [[rows[1][4][0], 11]]),
    "source path a number": lambda rows: _wrong(rows, 0, 6, 1),
    "source path a list": lambda rows: _wrong(rows, 0, 6, ["."]),
}


@pytest.mark.parametrize("shape", sorted(_WRONG_SHAPES))
def test_a_parsed_locks_record_of_a_wrong_shape_counts_as_absent(tmp_path, shape):
    """A record with a valid checksum whose payload is not what crossdock writes (hand-edited,
    or written by something else): the build's loader parses the lock again, never answers
    wrong packages and never fails later on a wrong type."""
    import json

    from crossdock.cache import CacheLayout
    from crossdock.resolve.lockfile import _packages_from_record

    records = CacheLayout(tmp_path / "cache").records("parsed-locks", version=1)
    (tmp_path / "uv.lock").write_text(LOCK)
    parsed = parse_lock(LOCK, tmp_path / "uv.lock")
    read_lock(tmp_path, records)  # recorded
    [record] = list((tmp_path / "cache" / "records" / "parsed-locks").iterdir())
    key = record.name.removesuffix(".rec")
    rows = json.loads(record.read_bytes().partition(b"\n")[2])
    assert records.load(key, _packages_from_record) == parsed  # the good record reads back

    assert records.store(key, _WRONG_SHAPES[shape](rows))
    assert records.load(key, _packages_from_record) is None
    assert read_lock(tmp_path, records) == parsed  # parsed again
    assert records.load(key, _packages_from_record) == parsed  # and recorded right again
