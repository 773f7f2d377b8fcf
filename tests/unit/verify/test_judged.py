"""Layer verdicts (verify.judged): a rebuild that changed one layer judges that layer's files
and takes the others' verdicts from the cache, and the report is the one a full verification
gives: a failure in a new layer is found, a failure in a cached layer is still reported, a file
an upper layer stops hiding is judged, and a damaged verdict is ignored."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from crossdock.image.digest import Digest
from crossdock.platform import ARM64
from crossdock.verify import Check, engine, verify_image
from crossdock.verify.report import PlatformReport
from tests.support.layertar import Entry, fixture_bytes, write_layer
from tests.support.miniimage import base_entries, config_for

SITE = "usr/local/lib/python3.13/dist-packages"
GOOD_SO = f"{SITE}/ok/_ok.cpython-313-aarch64-linux-gnu.so"
BAD_SO = f"{SITE}/bad/_bad.cpython-313-aarch64-linux-gnu.so"
DEPS: list[Entry] = [
    (GOOD_SO, "file", fixture_bytes("aarch64-puts.so")),
    (BAD_SO, "file", fixture_bytes("x86_64-puts.so")),  # the wrong architecture
    (f"{SITE}/ok-1.0.dist-info/WHEEL", "file", b"Tag: cp313-cp313-manylinux_2_17_aarch64\n"),
    (f"{SITE}/ok/__init__.py", "data", b"#!/usr/bin/python3\n"),
]


def _digest(path: Path) -> Digest:
    return Digest("sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())


class _Image:
    """A base, a dependency layer and an app layer that the test replaces (a code change)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        self.root = root
        self.base = write_layer(root / "base.tar.gz", base_entries(ARM64))
        self.deps = write_layer(root / "deps.tar.gz", DEPS)
        self.version = 0

    def with_app(self, entries: list[Entry]) -> tuple[list[Path], list[Digest | None]]:
        self.version += 1
        app = write_layer(self.root / f"app{self.version}.tar.gz", entries)
        layers = [self.base, self.deps, app]
        return layers, [_digest(p) for p in layers]


def _verify(layers, digests, cache: Path | None) -> PlatformReport:
    report = verify_image(
        config_for(ARM64, layers=layers),
        layers,
        layer_digests=digests,
        first_layer=1,
        cache_dir=cache,
    )
    return replace(report, seconds=0.0)


def _failures(report: PlatformReport) -> set[tuple[str, str]]:
    return {(str(f.check), f.file.path) for f in report.failures}


def _count_judged(monkeypatch) -> list[str]:
    """The paths the per-file checks judge from observations (not from a layer's verdict)."""
    judged: list[str] = []
    real = engine._judge_file

    def spy(entries, observation, scan):
        judged.append(entries[0].path)
        real(entries, observation, scan)

    monkeypatch.setattr(engine, "_judge_file", spy)
    return judged


def test_a_code_change_judges_the_new_layer_only_and_reports_what_a_full_check_does(
    tmp_path, monkeypatch
):
    image = _Image(tmp_path / "img")
    cache = tmp_path / "cache"
    first = image.with_app([("app/main.py", "data", b"print(1)\n")])
    assert _failures(_verify(*first, cache)) == {(Check.ELF_PLATFORM, f"/{BAD_SO}")}
    judged = _count_judged(monkeypatch)
    # The code changes, and a wrong-architecture library comes with it.
    second = image.with_app(
        [
            ("app/main.py", "data", b"print(2)\n"),
            (
                "app/_native.cpython-313-aarch64-linux-gnu.so",
                "file",
                fixture_bytes("x86_64-puts.so"),
            ),
        ]
    )
    warm = _verify(*second, cache)
    # The new layer's files are judged (and the base's few files read for libc and the
    # entrypoint, which are not in scope); none of the dependency layer's.
    assert {"/app/main.py", "/app/_native.cpython-313-aarch64-linux-gnu.so"} <= set(judged)
    assert not [path for path in judged if path.startswith(f"/{SITE}")]
    assert warm == _verify(*second, None)  # exactly what a verification without a cache says
    assert _failures(warm) == {
        (Check.ELF_PLATFORM, f"/{BAD_SO}"),  # from the dependency layer's recorded verdict
        (Check.ELF_PLATFORM, "/app/_native.cpython-313-aarch64-linux-gnu.so"),
    }
    assert warm.counts["wheel"] == 1 and warm.counts["elf"] == 3


def test_a_file_an_upper_layer_stops_hiding_is_judged(tmp_path, monkeypatch):
    image = _Image(tmp_path / "img")
    cache = tmp_path / "cache"
    # The app layer deletes the bad library: the dependency layer's verdict is recorded for a
    # view without it...
    hiding = image.with_app([(BAD_SO, "whiteout", None), ("app/main.py", "data", b"1\n")])
    assert _verify(*hiding, cache).passed
    # ...and must not be used for an image where the file is visible again.
    shown = image.with_app([("app/main.py", "data", b"2\n")])
    judged = _count_judged(monkeypatch)
    report = _verify(*shown, cache)
    assert f"/{BAD_SO}" in judged
    assert _failures(report) == {(Check.ELF_PLATFORM, f"/{BAD_SO}")}
    assert report == _verify(*shown, None)
    # The other way round: recorded with the file visible, used for a view that hides it.
    judged.clear()
    hidden_again = image.with_app([(BAD_SO, "whiteout", None), ("app/main.py", "data", b"3\n")])
    again = _verify(*hidden_again, cache)
    assert again.passed, again.failures
    assert again == _verify(*hidden_again, None)
    assert f"/{GOOD_SO}" in judged  # judged again: the recorded view had one file more


def test_a_damaged_verdict_is_ignored_and_the_layer_judged(tmp_path, monkeypatch):
    image = _Image(tmp_path / "img")
    cache = tmp_path / "cache"
    first = image.with_app([("app/main.py", "data", b"1\n")])
    expected = _verify(*first, cache)
    records = sorted((cache / "records" / "layer-verdicts").glob("*.rec"))
    assert records
    for record in records:
        # A flipped byte in the payload: the finding's check name no longer parses, and the
        # checksum in the header no longer matches.
        record.write_bytes(record.read_bytes().replace(b"elf-platform", b"elf-platfORM"))
    judged = _count_judged(monkeypatch)
    assert _verify(*first, cache) == expected
    assert f"/{BAD_SO}" in judged  # judged from its bytes again
    assert _failures(expected) == {(Check.ELF_PLATFORM, f"/{BAD_SO}")}


def test_a_verdict_is_not_used_for_another_python_or_position(tmp_path, monkeypatch):
    image = _Image(tmp_path / "img")
    cache = tmp_path / "cache"
    layers, digests = image.with_app([("app/main.py", "data", b"1\n")])
    _verify(layers, digests, cache)
    judged = _count_judged(monkeypatch)
    # The same dependency layer one position higher (another layer below it).
    extra = write_layer(tmp_path / "extra.tar.gz", [("etc/extra", "data", b"x")])
    moved = [layers[0], extra, *layers[1:]]
    report = verify_image(
        config_for(ARM64, layers=moved),
        moved,
        layer_digests=[_digest(p) for p in moved],
        first_layer=1,
        cache_dir=cache,
    )
    assert f"/{BAD_SO}" in judged
    assert {f.file.layer_index for f in report.failures} == {2}
