"""Every kind of cache record read through ``Records.load`` treats a payload of the wrong shape as
absent: a record with a valid checksum that is not what crossdock writes (hand-edited, written by
another tool, damaged before it was checksummed) makes the caller read or build the fact again,
never a half-valid object (a number where text goes, a string iterated as a list, a boolean where
an index goes) that fails later or gives a wrong answer.

Each kind: the good payload, as its writer makes it, reads back; each wrong shape reads as None.
(The parsed-locks record: tests/unit/resolve/test_lockfile.py; the layer views:
tests/unit/rootfs/test_lower_views.py.)"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crossdock.cache import CacheLayout
from crossdock.image.digest import sha256_of
from crossdock.platform import ARM64

Change = Callable[[Any], Any]


def _changed(payload: object, change: Change) -> object:
    """``change`` applied to a copy of ``payload``: its return value, or the copy it edited."""
    altered = copy.deepcopy(payload)
    result = change(altered)
    return altered if result is None else result


def _check_kind(
    tmp_path: Path,
    kind: str,
    *,
    good: object,
    parse: Callable[[Any], object],
    wrong: dict[str, Change],
    version: int = 1,
) -> None:
    records = CacheLayout(tmp_path / "cache").records(kind, version=version)
    assert records.store("key", good)
    assert records.load("key", parse) is not None, "the good record reads back"
    accepted = []
    for name, change in wrong.items():
        assert records.store("key", _changed(good, change))
        if records.load("key", parse) is not None:
            accepted.append(name)
    assert accepted == [], f"{kind}: wrong shapes read as good records"


def _set(path: tuple[Any, ...], *, to: object) -> Change:
    """A change that sets the item at ``path`` (keys and indexes) to ``to``."""

    def change(payload: Any) -> None:
        target = payload
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = to

    return change


def test_base_verified(tmp_path):
    from crossdock.verify.engine import _passed

    wrong: dict[str, Change] = {
        "a string": lambda _: "no",
        "the string true": lambda _: "true",
        "a number": lambda _: 1,
        "a list": lambda _: [True],
        "an object": lambda _: {"passed": True},
        "false": lambda _: False,
    }
    _check_kind(tmp_path, "base-verified", good=True, parse=_passed, wrong=wrong)


def test_installed_trees(tmp_path):
    from crossdock.resolve.cache import _distributions

    good = [["pure", "3.20", ["py3-none-any"], True], ["native-both", "2.5.5", ["cp313"], False]]
    wrong: dict[str, Change] = {
        "an object": lambda rows: {"pure": rows[0]},
        "a row a 4-letter string": _set((0,), to="abcd"),
        "a row an object of 4 keys": _set((0,), to={"a": 1, "b": 2, "c": 3, "d": 4}),
        "a name a number": _set((0, 0), to=5),
        "a name in a list": _set((0, 0), to=["pure"]),
        "a name not normalized": _set((1, 0), to="Native_Both"),
        "a version a number": _set((0, 1), to=3.2),
        "tags a string": _set((0, 2), to="py3-none-any"),
        "a tag a number": _set((0, 2), to=[3]),
        "pure the string false": _set((1, 3), to="false"),
        "pure a number": _set((1, 3), to=0),
        "a row of 5 fields": lambda rows: [[*rows[0], "extra"]],
    }
    _check_kind(tmp_path, "installed-trees", good=good, parse=_distributions, wrong=wrong)


def test_layer_index(tmp_path):
    from crossdock.rootfs.layerindex import IndexCache, read_index
    from tests.support.layertar import write_layer

    layer = write_layer(
        tmp_path / "layer.tar.gz",
        [
            ("usr/bin/tool", "file", b"x"),
            ("usr/lib", "symlink", "lib64"),
            ("../../up", "file", b""),
        ],
    )
    digest = sha256_of(layer.read_bytes())
    cache = IndexCache(tmp_path / "cache")
    members, uncompressed = read_index(layer)
    cache.store(digest, members, uncompressed)
    assert cache.load(digest) == members
    records = CacheLayout(tmp_path / "cache").records("layer-index", version=3)
    good = [m.to_json() for m in members]
    file_row = next(i for i, m in enumerate(members) if m.name == "usr/bin/tool")
    wrong: dict[str, Change] = {
        "an object": lambda rows: {"abcdefg": rows[0]},
        "a row a 7-letter string": _set((file_row,), to="/bfoqwe"),
        "a name a number": _set((file_row, 1), to=5),
        "a mode a string": _set((file_row, 3), to="493"),
        "a mode a boolean": _set((file_row, 3), to=True),
        "a size a float": _set((file_row, 4), to=1.0),
        "a size a string": _set((file_row, 4), to="1"),
        "a negative mode": _set((file_row, 3), to=-1),
        "a link name a number": _set((file_row, 5), to=0),
        "an offset a boolean": _set((file_row, 6), to=False),
        "a path not absolute": _set((file_row, 0), to="usr/bin/tool"),
        "a path a list": _set((file_row, 0), to=["/usr/bin/tool"]),
        "a type unknown": _set((file_row, 2), to="x"),
    }
    accepted = []
    for name, change in wrong.items():
        assert records.store(digest.dashed, _changed(good, change))
        if cache.load(digest) is not None:
            accepted.append(name)
    assert accepted == []


def _os_inventory() -> object:
    from crossdock.sbom.inventory import OsInventory, OsPackage

    return OsInventory(
        kind="dpkg",
        packages=(OsPackage("libc6", "2.41-6", "arm64", "glibc", "LGPL-2.1"), OsPackage("a", "1")),
        source="/var/lib/dpkg/status",
        distro="debian-13",
    )


def test_base_os_packages(tmp_path):
    from crossdock.sbom.inventory import OsInventory

    good = _os_inventory().to_json()  # type: ignore[attr-defined]
    assert OsInventory.from_json(good) == _os_inventory()
    wrong: dict[str, Change] = {
        "a list": lambda data: [data],
        "a kind a number": _set(("kind",), to=1),
        "packages a string": _set(("packages",), to="ab"),
        "packages an object": _set(("packages",), to={"ab": 1}),
        "a package a 2-letter string": _set(("packages", 0), to="ab"),
        "a package an object of 5 keys": _set(("packages", 0), to=dict.fromkeys("abcde")),
        "a package's name a number": _set(("packages", 0, 0), to=6),
        "a package's version a list": _set(("packages", 0, 1), to=["2.41"]),
        "a package's architecture a number": _set(("packages", 0, 2), to=64),
        "a package of 2 fields": _set(("packages", 0), to=["libc6", "2.41-6"]),
        "a source a number": _set(("source",), to=1),
        "a distro a list": _set(("distro",), to=["debian", "13"]),
        "a note an object": _set(("note",), to={}),
        "no kind": lambda data: {k: v for k, v in data.items() if k != "kind"},
    }
    _check_kind(tmp_path, "base-os-packages", good=good, parse=OsInventory.from_json, wrong=wrong)


def test_deps_layer(tmp_path):
    from crossdock.backends.native import _blob_from_meta
    from crossdock.rootfs.layerindex import IndexCache

    blobs = CacheLayout(tmp_path / "cache").blobs
    facts = IndexCache(tmp_path / "cache")
    data = b"a layer's bytes"
    digest = sha256_of(data)
    blobs.keep_bytes(data, digest)
    facts.store_uncompressed(digest, sha256_of(b"its tar"))  # as written: what its bytes hold
    good = {"digest": str(digest), "diff_id": str(sha256_of(b"its tar")), "size": len(data)}
    wrong: dict[str, Change] = {
        "a list": lambda meta: [meta],
        "a size a string": _set(("size",), to=str(len(data))),
        "a size a float": _set(("size",), to=float(len(data))),
        "a size a boolean": _set(("size",), to=True),
        "a diff_id a number": _set(("diff_id",), to=1),
        "a diff_id not a digest": _set(("diff_id",), to="sha256:xyz"),
        "a digest in a list": _set(("digest",), to=[str(digest)]),
        "no diff_id": lambda meta: {k: v for k, v in meta.items() if k != "diff_id"},
        "a diff_id not its blob's": _set(("diff_id",), to=str(sha256_of(b"another tar"))),
    }
    _check_kind(
        tmp_path,
        "deps-layer",
        good=good,
        parse=lambda meta: _blob_from_meta(meta, blobs, facts),
        wrong=wrong,
    )


def test_base_profile(tmp_path):
    from crossdock.rootfs.baseprofile import BaseProfile

    profile = BaseProfile(
        platform=ARM64,
        python_version="3.13",
        python_path="/usr/local/bin/python3.13",
        python_stdlib="/usr/local/lib/python3.13",
        site_packages=("/usr/local/lib/python3.13/site-packages",),
        glibc_version="2.41",
        libc_path="/usr/lib/aarch64-linux-gnu/libc.so.6",
        glibcxx_version="3.4.33",
        env=(("PATH", "/usr/local/bin:/usr/bin"), ("LANG", "C.UTF-8")),
        working_dir="/",
    )
    good = profile.to_json()
    assert BaseProfile.from_json(good) == profile
    wrong: dict[str, Change] = {
        "a list": lambda data: [data],
        "a schema a string": _set(("schema",), to="1"),
        "a platform a number": _set(("platform",), to=64),
        "a python version a number": _set(("python_version",), to=3.13),
        "a python version not numbers": _set(("python_version",), to="three"),
        "a python path a list": _set(("python_path",), to=["/usr/bin/python3"]),
        "site-packages a string": _set(("site_packages",), to="/usr/lib"),
        "site-packages empty": _set(("site_packages",), to=[]),
        "a site-packages folder a number": _set(("site_packages", 0), to=1),
        "a glibc version a number": _set(("glibc_version",), to=2.41),
        "a glibc version not numbers": _set(("glibc_version",), to="2.x"),
        "a glibcxx version not numbers": _set(("glibcxx_version",), to="new"),
        "env a list of pairs": _set(("env",), to=[["PATH", "/bin"]]),
        "an env value a number": _set(("env", "LANG"), to=1),
        "a working folder a number": _set(("working_dir",), to=0),
        "no working folder": lambda data: {k: v for k, v in data.items() if k != "working_dir"},
    }
    _check_kind(tmp_path, "base-profile", good=good, parse=BaseProfile.from_json, wrong=wrong)


@pytest.mark.parametrize("payload", [None, 0, "x", [], {}])
def test_every_parse_refuses_a_payload_that_is_not_its_container(tmp_path, payload):
    """The smallest wrong shapes: none of them is any kind's record."""
    from crossdock.backends.native import _blob_from_meta
    from crossdock.rootfs.baseprofile import BaseProfile
    from crossdock.rootfs.layerindex import IndexCache
    from crossdock.sbom.inventory import OsInventory
    from crossdock.verify.engine import _passed

    blobs = CacheLayout(tmp_path / "cache").blobs
    facts = IndexCache(tmp_path / "cache")
    records = CacheLayout(tmp_path / "cache").records("any", version=1)
    assert records.store("key", payload)
    for parse in (
        _passed,
        OsInventory.from_json,
        BaseProfile.from_json,
        lambda meta: _blob_from_meta(meta, blobs, facts),
    ):
        assert records.load("key", parse) is None


def _elf_facts_row() -> list[object]:
    from crossdock.rootfs.elf import ElfFacts
    from crossdock.verify.observe import facts_to_json

    facts = ElfFacts(
        machine="aarch64",
        elf_class=64,
        little_endian=True,
        elf_type="ET_DYN",
        soname="libx.so.1",
        needed=("libc.so.6",),
        version_needs=(("libc.so.6", "GLIBC_2.17"),),
        version_defs=(),
    )
    return facts_to_json(facts)


# An ELF facts row (shared by observations and layer verdicts): [machine, class, little-endian,
# type, soname, needed, version needs, version defs].
WRONG_FACTS: dict[str, Change] = {
    "facts a string": lambda _: "aarch64",
    "facts an object of 8 keys": lambda _: dict.fromkeys("abcdefgh", "x"),
    "a machine a number": _set((0,), to=183),
    "a class a string": _set((1,), to="64"),
    "a class a boolean": _set((1,), to=True),
    "little-endian a number": _set((2,), to=1),
    "a soname a list": _set((4,), to=["libx.so.1"]),
    "needed a string": _set((5,), to="libc.so.6"),
    "a version need a 2-letter string": _set((6, 0), to="ab"),
    "a version need's version a number": _set((6, 0, 1), to=2.17),
    "version defs an object": _set((7,), to={"GLIBC_2.17": 1}),
}


def _in_facts(key: str, change: Change, *, listed: bool) -> Change:
    """``change`` applied to the facts row under ``key`` (the first of a list when ``listed``)."""

    def apply(data: dict[str, Any]) -> dict[str, Any]:
        if listed:
            return {**data, key: [_changed(data[key][0], change)]}
        return {**data, key: _changed(data[key], change)}

    return apply


def test_observations(tmp_path):
    from crossdock.rootfs.fsview import Layer
    from crossdock.verify.magic import BinaryKind
    from crossdock.verify.observe import Observation, ObservationCache, facts_from_json

    digest = sha256_of(b"a layer")
    layer = Layer(0, tmp_path / "layer.tar", digest)
    elf = Observation(
        BinaryKind.ELF,
        wants_pyc=False,
        wants_wheel=False,
        facts=facts_from_json(_elf_facts_row()),
        shebang=b"#!/bin/sh\n",
    )
    plain = Observation(BinaryKind.OTHER, wants_pyc=True, wants_wheel=False)
    ObservationCache(tmp_path, limit=1000).add_for(digest, {5: elf, 6: plain})
    assert ObservationCache(tmp_path, limit=1000).get(layer, 5) == elf
    assert ObservationCache(tmp_path, limit=1000).get(layer, 6) == plain
    records = CacheLayout(tmp_path).records("observations", version=2)
    good = {"5": elf.to_json(), "6": plain.to_json()}
    wrong: dict[str, tuple[str, Change]] = {
        "plain flags past both": ("6", lambda _: 4),
        "plain flags negative": ("6", lambda _: -1),
        "plain flags a boolean": ("6", lambda _: True),
        "plain flags a float": ("6", lambda _: 1.0),
        "plain flags a string": ("6", lambda _: "1"),
        "a kind a number": ("5", _set(("k",), to=1)),
        "wants-pyc a number": ("5", _set(("p",), to=0)),
        "wants-wheel a string": ("5", _set(("w",), to="false")),
        "a head a number": ("5", _set(("h",), to=0)),
        "a head not base64": ("5", _set(("h",), to="not base64!")),
        "a shebang a list": ("5", _set(("s",), to=["IyEvYmluL3NoCg=="])),
        "an ELF error a number": ("5", _set(("e",), to=1)),
        "a wheel text an object": ("5", _set(("t",), to={})),
        "no facts key": ("5", lambda data: {k: v for k, v in data.items() if k != "f"}),
        **{
            name: ("5", _in_facts("f", change, listed=False))
            for name, change in WRONG_FACTS.items()
        },
    }
    accepted = []
    for name, (ordinal, change) in wrong.items():
        altered = {**good, ordinal: _changed(good[ordinal], change)}
        assert records.store(f"{digest.dashed}-1000", altered)
        if ObservationCache(tmp_path, limit=1000).get(layer, int(ordinal)) is not None:
            accepted.append(name)
    assert accepted == []


def test_layer_verdicts(tmp_path):
    from crossdock.verify.judged import LayerVerdict, _verdict_if
    from crossdock.verify.observe import facts_from_json
    from crossdock.verify.report import Check, FileRef, Finding

    facts = facts_from_json(_elf_facts_row())
    ref = FileRef("/usr/lib/libx.so.1", 1, str(sha256_of(b"layer")))
    verdict = LayerVerdict(
        counts={"elf": 1, "wheel": 0},
        findings=[
            Finding(Check.ELF_PLATFORM, ref, expected="aarch64", found="x86_64", fix="rebuild")
        ],
        elves=[(ref, facts)],
        wheels=[(FileRef("/x-1.dist-info/WHEEL", 1, None), "Tag: py3-none-any\n")],
        facts_by_path={"/usr/lib/libx.so.1": facts},
        heads_by_path={"/app/m.pyc": b"\xf3\r\r\n"},
    )
    good = {"visible": "fingerprint", "verdict": verdict.to_json()}
    assert _verdict_if(good, "fingerprint") == verdict

    def in_verdict(change: Change) -> Change:
        return lambda data: {**data, "verdict": _changed(data["verdict"], change)}

    wrong: dict[str, Change] = {
        "a list": lambda data: [data],
        "a verdict a list": _set(("verdict",), to=[]),
        **{
            name: in_verdict(change)
            for name, change in {
                "counts an object": _set(("counts",), to={"elf": 1}),
                "a count a 2-letter string": _set(("counts", 0), to="e1"),
                "a count a string": _set(("counts", 0, 1), to="1"),
                "a count negative": _set(("counts", 0, 1), to=-1),
                "a count name a number": _set(("counts", 0, 0), to=1),
                "a finding's check unknown": _set(("findings", 0, "check"), to="nope"),
                "a finding's path a number": _set(("findings", 0, "path"), to=1),
                "a finding's layer a string": _set(("findings", 0, "layer_index"), to="1"),
                "a finding's layer a boolean": _set(("findings", 0, "layer_index"), to=True),
                "a finding's fix a list": _set(("findings", 0, "fix"), to=["rebuild"]),
                "a finding's allowance a number": _set(("findings", 0, "allowed_by"), to=1),
                "an ELF's facts index a string": _set(("elves", 0, 1), to="0"),
                "an ELF's facts index negative": _set(("elves", 0, 1), to=-1),
                "an ELF's facts index a boolean": _set(("elves", 0, 1), to=False),
                "an ELF's ref a 3-letter string": _set(("elves", 0, 0), to="/a1"),
                "a ref's layer a float": _set(("elves", 0, 0, 1), to=1.0),
                "a ref's digest a number": _set(("elves", 0, 0, 2), to=1),
                "a wheel's text a number": _set(("wheels", 0, 1), to=1),
                "a path's facts index past the end": _set(("facts_by_path", 0, 1), to=1),
                "a head a number": _set(("heads_by_path", 0, 1), to=5),
                "a head pair of 3": _set(("heads_by_path", 0), to=["/a", "8w0NCg==", 1]),
            }.items()
        },
        **{
            f"facts: {name}": in_verdict(_in_facts("facts", change, listed=True))
            for name, change in WRONG_FACTS.items()
        },
    }
    _check_kind(
        tmp_path,
        "layer-verdicts",
        good=good,
        parse=lambda payload: _verdict_if(payload, "fingerprint"),
        wrong=wrong,
    )
