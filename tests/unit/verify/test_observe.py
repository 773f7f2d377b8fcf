"""The observations behind verification (facts read from member bytes), keyed by layer digest: a
warm cache gives exactly the report a cold one gives, damaged observation files are ignored and
rebuilt, and nothing cached is used for other bytes, limits or formats or hides a failure."""

from __future__ import annotations

import hashlib
import io
import shutil
from dataclasses import replace
from pathlib import Path

from crossdock.image.digest import Digest
from crossdock.layers import LayerBlob, LayerEntry, write_layer
from crossdock.platform import AMD64, ARM64
from crossdock.rootfs.fsview import DEFAULT_READ_LIMIT, Layer, LayerFS, LazyBuffer
from crossdock.rootfs.layerindex import IndexCache
from crossdock.verify import Check, verify_image
from crossdock.verify.observe import Observation, ObservationCache, observe
from tests.support.layertar import Entry, fixture_bytes, other_python_pyc
from tests.support.miniimage import config_for, image

SITE = "usr/local/lib/python3.13/dist-packages"


def _digest(path: Path) -> Digest:
    return Digest("sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())


def _problem_image(tmp_path: Path) -> tuple[list[Path], list[Digest | None]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    host_pyc = other_python_pyc(tmp_path)
    layers = image(
        tmp_path,
        ARM64,
        [
            (
                f"{SITE}/ok/_ok.cpython-313-aarch64-linux-gnu.so",
                "file",
                fixture_bytes("aarch64-puts.so"),
            ),
            (
                f"{SITE}/bad/_bad.cpython-313-aarch64-linux-gnu.so",
                "file",
                fixture_bytes("x86_64-puts.so"),
            ),
            (f"{SITE}/pc-2.0.dist-info/WHEEL", "file", b"Tag: cp312-cp312-manylinux_2_17_x86_64\n"),
            (f"{SITE}/mac/_m.cpython-313-darwin.so", "file", fixture_bytes("macos-arm64-head.bin")),
            ("app/__pycache__/m.cpython-311.pyc", "file", host_pyc),
            ("app/broken.so", "file", b"\x7fELF\x02\x01\x01" + b"\0" * 9),
        ],
        [("app/main.py", "file", b"print('hi')\n")],
    )
    return layers, [_digest(p) for p in layers]


def _comparable(report):
    return replace(report, seconds=0.0)


def test_a_warm_cache_gives_the_same_report_without_reading_any_layer(tmp_path):
    layers, digests = _problem_image(tmp_path / "img")
    cache = tmp_path / "cache"
    config = config_for(ARM64, layers=layers)
    uncached = verify_image(config, layers, layer_digests=digests, first_layer=1)
    cold = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=cache)
    warm = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=cache)
    assert _comparable(uncached) == _comparable(cold) == _comparable(warm)
    assert {str(f.check) for f in uncached.failures} >= {
        Check.ELF_PLATFORM,
        Check.ELF_READABLE,
        Check.FOREIGN_BINARY,
        Check.PYC_MAGIC,
        Check.WHEEL_PYTHON,
    }
    # Warm, every byte the checks need comes from the caches: empty the blobs and verify again.
    for path in layers:
        path.write_bytes(b"")
    blind = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=cache)
    assert _comparable(blind) == _comparable(uncached)


def test_a_warm_cache_is_judged_anew_for_another_platform_and_other_allow_rules(tmp_path):
    # The same layers, cached while verified as arm64, now labelled amd64: every arm64 ELF in
    # scope must fail, because observations are cached as facts about bytes, and verdicts only
    # for the platform (and Python) they were judged for (verify.judged).
    tree: list[Entry] = [
        (
            f"{SITE}/ok/_ok.cpython-313-aarch64-linux-gnu.so",
            "file",
            fixture_bytes("aarch64-puts.so"),
        )
    ]
    (tmp_path / "img").mkdir()
    layers = image(tmp_path / "img", ARM64, tree)
    digests: list[Digest | None] = [_digest(p) for p in layers]
    cache = tmp_path / "cache"
    passed = verify_image(
        config_for(ARM64, layers=layers),
        layers,
        layer_digests=digests,
        first_layer=1,
        cache_dir=cache,
    )
    assert passed.passed, passed.failures
    relabelled = verify_image(
        config_for(AMD64, layers=layers),
        layers,
        layer_digests=digests,
        first_layer=1,
        cache_dir=cache,
    )
    assert {(str(f.check), f.file.path) for f in relabelled.failures} >= {
        (Check.ELF_PLATFORM, f"/{tree[0][0]}")
    }
    allowed = verify_image(
        config_for(AMD64, layers=layers),
        layers,
        layer_digests=digests,
        first_layer=1,
        cache_dir=cache,
        allow=[f"elf-platform:/{SITE}/*"],
    )
    assert not any(str(f.check) == Check.ELF_PLATFORM for f in allowed.failures)
    assert allowed.allowed


def test_observations_are_not_reused_for_other_bytes_limits_or_formats(tmp_path):
    layers, digests = _problem_image(tmp_path / "img")
    verify_image(
        config_for(ARM64, layers=layers),
        layers,
        layer_digests=digests,
        first_layer=1,
        cache_dir=tmp_path,
    )
    folder = tmp_path
    deps = Layer(1, layers[1], digests[1])
    cache = ObservationCache(folder, limit=DEFAULT_READ_LIMIT)
    known = [o for o in range(20) if cache.get(deps, o) is not None]
    assert known  # the dependency layer's members were observed and kept
    # Another digest (other bytes), another parse limit: nothing is found.
    other = Layer(1, layers[1], Digest("sha256:" + "0" * 64))
    assert all(cache.get(other, o) is None for o in known)
    assert all(
        ObservationCache(folder, limit=DEFAULT_READ_LIMIT - 1).get(deps, o) is None for o in known
    )
    # A file from an older format (or damaged) is ignored.
    path = cache.path_for(digests[1])  # type: ignore[arg-type]
    older = path.read_bytes().replace(b"observations/2 ", b"observations/1 ")
    assert older != path.read_bytes()
    path.write_bytes(older)
    assert all(
        ObservationCache(folder, limit=DEFAULT_READ_LIMIT).get(deps, o) is None for o in known
    )


def test_a_damaged_observation_file_is_ignored_and_rebuilt(tmp_path):
    layers, digests = _problem_image(tmp_path / "img")
    config = config_for(ARM64, layers=layers)
    expected = _comparable(
        verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=tmp_path)
    )
    deps_digest = digests[1]
    assert deps_digest is not None
    folder = ObservationCache(tmp_path, limit=DEFAULT_READ_LIMIT).path_for(deps_digest).parent
    assert list(folder.iterdir())
    for path in folder.iterdir():
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    # Without the layers' verdicts (verify.judged), the observations are needed again.
    shutil.rmtree(tmp_path / "records" / "layer-verdicts")
    again = verify_image(config, layers, layer_digests=digests, first_layer=1, cache_dir=tmp_path)
    assert _comparable(again) == expected
    for path in folder.iterdir():
        header, _, payload = path.read_bytes().partition(b"\n")
        assert header.endswith(hashlib.sha256(payload).hexdigest().encode())


def test_an_observation_made_for_another_name_is_not_used(tmp_path):
    # A .pyc check needs the file's header: an observation of the same bytes made under a name
    # that did not ask for it does not fit, so the file is read again.
    data = other_python_pyc(tmp_path)
    as_data = observe(LazyBuffer(io.BytesIO(data), len(data)), "/app/blob.bin")
    as_pyc = observe(LazyBuffer(io.BytesIO(data), len(data)), "/app/m.pyc")
    assert not as_data.fits("/app/m.pyc")
    assert as_pyc.fits("/app/m.pyc")
    assert as_pyc.head == data[:64]
    assert Observation.from_json(as_pyc.to_json()) == as_pyc
    assert Observation.from_json(as_data.to_json()) == as_data
    elf = fixture_bytes("aarch64-puts.so")
    as_elf = observe(LazyBuffer(io.BytesIO(elf), len(elf)), "/x.so")
    assert as_elf.facts is not None
    assert Observation.from_json(as_elf.to_json()) == as_elf


def _written_with_observations(tmp_path: Path) -> tuple[LayerBlob, dict[int, Observation]]:
    """The problem files of ``_problem_image`` and a large ELF (past the 8 MiB a buffer keeps in
    memory) as a layer written by crossdock.layers.write_layer, observed while it was written."""
    tree = tmp_path / "tree"
    files = {
        "ok/_ok.cpython-313-aarch64-linux-gnu.so": fixture_bytes("aarch64-puts.so"),
        "bad/_bad.cpython-313-aarch64-linux-gnu.so": fixture_bytes("x86_64-puts.so"),
        "big/_big.cpython-313-aarch64-linux-gnu.so": fixture_bytes("aarch64-puts.so")
        + b"\0" * (9 << 20),
        "pc-2.0.dist-info/WHEEL": b"Tag: cp312-cp312-manylinux_2_17_x86_64\n",
        "mac/_m.cpython-313-darwin.so": fixture_bytes("macos-arm64-head.bin"),
        "app/__pycache__/m.cpython-311.pyc": other_python_pyc(tmp_path),
        "app/broken.so": b"\x7fELF\x02\x01\x01" + b"\0" * 9,
        "bin/tool": b"#!/usr/bin/python3.11\nprint()\n",
    }
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    observed: dict[int, Observation] = {}

    def keep(ordinal: int, name: str, data: LazyBuffer) -> None:
        observed[ordinal] = observe(data, name)

    entries = [LayerEntry(f"{SITE}/{name}", source=tree / name) for name in files]
    return write_layer(entries, tmp_path / "deps.tar.gz", mtime=0, observe=keep), observed


def test_what_the_layer_writer_observes_is_what_reading_the_blob_back_observes(tmp_path):
    """The native backend keeps what it observed of each file while writing the layer (the
    files are read once, and what the observer read is exactly what was written), so the
    verify step does not decompress the layer: each observation equals the one made from the
    member's bytes read back from the blob, large ELF files (kept on disk) included."""
    blob, observed = _written_with_observations(tmp_path)
    fs = LayerFS([blob.path], [blob.digest])
    read_back = {
        file.entry.content[1]: observe(file.data, file.entry.path)
        for file in fs.iter_files(groups=fs.file_groups(lambda _: True))
        if file.entry.content is not None
    }
    assert observed == read_back
    assert len(observed) == 8
    assert sum(o.facts is not None for o in observed.values()) == 3  # the readable ELF files


def test_a_layer_observed_while_written_fails_verification_as_one_read_back(tmp_path):
    """Observations made by the writer are facts about the blob's bytes, kept under its digest:
    verifying the image from them reports every failure a verification that reads the blob
    finds (a foreign ELF, a damaged one, Mach-O, a host .pyc, a wrong wheel tag)."""
    blob, observed = _written_with_observations(tmp_path)
    (tmp_path / "img").mkdir()
    layers = [*image(tmp_path / "img", ARM64), blob.path]
    digests: list[Digest | None] = [_digest(layers[0]), blob.digest]
    config = config_for(ARM64, layers=layers)
    read = verify_image(config, layers, layer_digests=digests, first_layer=1)
    # As the native backend keeps them: the index and the observations taken while writing.
    cache = tmp_path / "cache"
    assert blob.members is not None
    IndexCache(cache).store(blob.digest, blob.members, blob.diff_id)
    ObservationCache(cache, limit=DEFAULT_READ_LIMIT).add_for(blob.digest, observed)
    layers[1].write_bytes(b"")  # the checks get nothing from the blob itself now
    from_writer = verify_image(
        config, layers, layer_digests=digests, first_layer=1, cache_dir=cache
    )
    assert _comparable(from_writer) == _comparable(read)
    assert {str(f.check) for f in read.failures} >= {
        Check.ELF_PLATFORM,
        Check.ELF_READABLE,
        Check.FOREIGN_BINARY,
        Check.PYC_MAGIC,
        Check.WHEEL_PYTHON,
    }
