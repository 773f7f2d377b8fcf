"""Each layer's uncompressed digest against the diff_id its config names (``Check.DIFF_ID``): a
runtime refuses to unpack a layer whose uncompressed bytes are not its diff_id, so such an image
must never pass, whichever source it was read from and whatever the cache holds."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from rich.console import Console

from crossdock.image.artifact import ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.mutate import with_config
from crossdock.platform import AMD64
from crossdock.rootfs.layerindex import IndexCache
from crossdock.sinks import write_oci_layout
from crossdock.sources import open_images
from crossdock.verify import Check, PlatformReport, render_reports, verify_platform_image
from tests.support import images
from tests.support.miniimage import base_entries

SITE = "usr/local/lib/python3.13/dist-packages"
ENV = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python3"]}


def _image(folder: Path, app: bytes = b"print(1)\n") -> PlatformImage:
    """A real amd64 base (libc, libstdc++, python3) and an app layer, both gzipped, and a
    config naming their true diff_ids."""
    layers = [
        images.layer(folder, base_entries(AMD64)),
        images.layer(folder, {f"{SITE}/pkg/__init__.py": b"", "app/main.py": app}),
    ]
    return images.platform_image(AMD64, layers, config=ENV)


def _claiming(image: PlatformImage, diff_ids: list[Digest]) -> PlatformImage:
    """``image`` (the same layers) whose config names ``diff_ids``, its manifest made anew."""
    data = dict(image.config.data)
    data["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d in diff_ids]}
    return with_config(image, ImageConfig.from_data(data))


def _verify(image: PlatformImage, cache: Path | None) -> PlatformReport:
    # --allow '*' allows every finding a rule may allow: not this one.
    return verify_platform_image(image, declared_platform=AMD64, cache_dir=cache, allow=["*"])


def _diff_id_findings(report: PlatformReport) -> list[tuple[int | None, str | None]]:
    return [
        (f.file.layer_index, f.file.layer_digest)
        for f in report.failures
        if f.check == Check.DIFF_ID
    ]


def test_a_correct_image_passes_with_and_without_a_cache(tmp_path):
    image = _image(tmp_path / "blobs")
    for cache in (None, tmp_path / "cache", tmp_path / "cache"):  # none, cold, warm
        report = _verify(image, cache)
        assert report.passed, report.failures
        assert str(Check.DIFF_ID) in report.checks


def test_a_wrong_diff_id_fails_naming_the_platform_layer_and_both_digests(tmp_path):
    image = _image(tmp_path / "blobs")
    true = image.config.diff_ids
    app = image.layers[1].descriptor.digest
    # The classic mistake: the compressed blob's digest where the uncompressed one belongs.
    wrong = _claiming(image, [true[0], app])
    for cache in (None, tmp_path / "cache", tmp_path / "cache"):  # none, cold, warm
        report = _verify(wrong, cache)
        assert _diff_id_findings(report) == [(1, str(app))]
        assert not report.passed
    (finding,) = report.failures
    assert str(true[1]) in finding.expected
    assert str(app) in finding.found and "linux/amd64" in finding.found
    console = Console(file=io.StringIO(), width=80, no_color=True)
    render_reports([report], console)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    (line,) = [row for row in output.splitlines() if "diff-id" in row]
    assert "(layer 1)" in line
    for named in (str(app), str(true[1])):
        assert named in line  # on the one line, however long (names are never cut)


def test_a_config_with_one_diff_id_too_few_fails(tmp_path):
    image = _image(tmp_path / "blobs")
    report = _verify(_claiming(image, list(image.config.diff_ids[:1])), tmp_path / "cache")
    assert not report.passed
    (finding,) = report.failures
    assert finding.check == Check.DIFF_ID
    assert finding.expected.startswith("2 diff_ids") and finding.found.startswith("1 in")
    # One too many, the same.
    extra = [*image.config.diff_ids, image.config.diff_ids[0]]
    assert _diff_id_findings(_verify(_claiming(image, extra), None)) == [(None, None)]


def test_an_oci_layout_with_a_wrong_diff_id_fails(tmp_path):
    image = _image(tmp_path / "blobs")
    wrong = _claiming(image, [image.config.diff_ids[0], sha256_of(b"another layer")])
    layout = write_oci_layout(ImageSet((wrong,), None), tmp_path / "layout")
    with open_images(str(layout), cache_dir=tmp_path / "cache") as found:
        (read,) = [one for image_set in found for one in image_set.images]
        report = _verify(read, tmp_path / "cache")
    assert _diff_id_findings(report) == [(1, str(image.layers[1].descriptor.digest))]


def test_the_recorded_uncompressed_digest_is_used_only_for_its_own_blob(tmp_path):
    cache = tmp_path / "cache"
    first = _image(tmp_path / "blobs", app=b"print(1)\n")
    second = _image(tmp_path / "blobs", app=b"print(2)\n")
    assert first.layers[1].descriptor.digest != second.layers[1].descriptor.digest
    assert _verify(first, cache).passed  # records the first app layer's uncompressed digest
    # That record copied under the second blob's name (a restored or tampered cache): its
    # header names the first blob, so it is foreign there, and the second blob is hashed.
    index = IndexCache(cache)
    kept = index.path_for(first.layers[1].descriptor.digest)
    record = kept.parent.parent / "layer-diff-id" / kept.name
    assert record.is_file()
    shutil.copyfile(record, record.with_name(f"{second.layers[1].descriptor.digest.dashed}.rec"))
    assert index.uncompressed(second.layers[1].descriptor.digest) is None
    claiming_first = _claiming(second, [second.config.diff_ids[0], first.config.diff_ids[1]])
    assert _diff_id_findings(_verify(claiming_first, cache)) == [
        (1, str(second.layers[1].descriptor.digest))
    ]
    # A record stored for a blob is that blob's fact only: a wrong value stored for the first
    # (a damaged cache) changes nothing for the second.
    index.store_uncompressed(first.layers[1].descriptor.digest, second.config.diff_ids[1])
    assert _verify(second, cache).passed


def test_a_layer_indexed_before_its_digest_was_recorded_is_hashed_now(tmp_path):
    cache = tmp_path / "cache"
    image = _image(tmp_path / "blobs")
    assert _verify(image, cache).passed  # indexes (and views) cached
    shutil.rmtree(cache / "records" / "layer-diff-id")  # as an older crossdock left the cache
    wrong = _claiming(image, [sha256_of(b"not the base"), image.config.diff_ids[1]])
    assert _diff_id_findings(_verify(wrong, cache)) == [(0, str(image.layers[0].descriptor.digest))]
    recorded = IndexCache(cache).uncompressed(image.layers[0].descriptor.digest)
    assert recorded == image.config.diff_ids[0]
    assert _verify(image, cache).passed
