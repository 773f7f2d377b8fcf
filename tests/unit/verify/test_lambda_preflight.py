"""The Lambda preflight on crafted images, one defect each, written as real OCI layouts (with the
image model and crossdock's layer writer) and read back the way `crossdock verify` reads them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossdock.cli import _register_commands, app
from crossdock.image.artifact import ImageSet
from crossdock.image.config import HistoryEntry
from crossdock.image.mediatypes import MediaType
from crossdock.layers import LayerEntry, write_layer
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.sinks import write_oci_layout
from crossdock.sources.oci_layout import read_oci_layout
from crossdock.verify import Check
from crossdock.verify.lambda_preflight import (
    LAMBDA_ERRORS,
    PreflightImage,
    PreflightLayer,
    lambda_preflight,
)
from tests.support.images import OCI, index_over, layer_file, platform_image
from tests.support.layertar import write_layer as write_raw_layer

HANDLER = b"def handler(event, context):\n    return {'ok': True}\n"
GOOD_ENTRIES = [
    LayerEntry("var/task/app/__init__.py", data=b""),
    LayerEntry("var/task/app/main.py", data=HANDLER),
]


def _layout(
    tmp_path: Path,
    layers: Sequence[tuple[Path, str]],
    *,
    platform: Platform = ARM64,
    cmd: str = "app.main.handler",
    index: bool = False,
    manifest_type: str = MediaType.OCI_MANIFEST,
) -> Path:
    """An OCI layout of one image built from (layer file, media type) pairs."""
    image = platform_image(
        platform,
        [layer_file(path, media_type) for path, media_type in layers],
        family=OCI._replace(manifest=manifest_type),
        config={"Env": ["LAMBDA_TASK_ROOT=/var/task"], "Cmd": [cmd]},
        history=[HistoryEntry(path.name).to_json() for path, _ in layers],
    )
    top = index_over([image]) if index else None
    return write_oci_layout(ImageSet((image,), top), tmp_path / "layout")


def _good_layer(tmp_path: Path, entries: list[LayerEntry] | None = None) -> Path:
    return write_layer(entries or GOOD_ENTRIES, tmp_path / "good.tar.gz").path


def _preflight(layout: Path, **kwargs: int) -> tuple[list[tuple[Check, str]], list[str]]:
    (image_set,) = read_oci_layout(layout)
    (loaded,) = image_set.images
    findings, notes = lambda_preflight(
        PreflightImage(
            manifest_media_type=loaded.manifest.media_type,
            config_media_type=loaded.manifest.config.media_type,
            config=loaded.config,
            layers=tuple(
                PreflightLayer(b.descriptor.media_type, b.descriptor.digest, b.path)
                for b in loaded.layers
            ),
            behind_index=image_set.index is not None,
        ),
        **kwargs,  # type: ignore[arg-type]
    )
    for finding in findings:
        # Every failure names the Lambda error it prevents.
        assert LAMBDA_ERRORS[finding.check] in finding.found
    return [(f.check, f.file.path) for f in findings], notes


def test_a_lambda_ready_image_passes(tmp_path):
    layout = _layout(tmp_path, [(_good_layer(tmp_path), MediaType.OCI_LAYER_GZIP)])
    assert _preflight(layout) == ([], [])


def test_crossdocks_layer_writer_gives_every_parent_its_own_entry_first(tmp_path):
    """The writer adds var/, var/task/, var/task/app/ before the files, whatever the order in."""
    entries = [LayerEntry("var/task/z/deep/er/x.py", data=b""), *GOOD_ENTRIES]
    layout = _layout(tmp_path, [(_good_layer(tmp_path, entries), MediaType.OCI_LAYER_GZIP)])
    assert _preflight(layout) == ([], [])


def test_an_index_is_refused(tmp_path):
    layout = _layout(tmp_path, [(_good_layer(tmp_path), MediaType.OCI_LAYER_GZIP)], index=True)
    assert _preflight(layout)[0] == [(Check.LAMBDA_SINGLE_MANIFEST, "(image index)")]


def test_an_uncompressed_layer_is_refused_for_its_bytes_and_its_media_type(tmp_path):
    raw = write_raw_layer(
        tmp_path / "raw.tar",
        [("var", "dir", None), ("var/task", "dir", None), ("var/task/app.py", "file", HANDLER)],
        gzipped=False,
    )
    layout = _layout(tmp_path, [(raw, MediaType.OCI_LAYER)], cmd="app.handler")
    assert _preflight(layout)[0] == [
        (Check.LAMBDA_MEDIA_TYPE, "(layer)"),
        (Check.LAMBDA_GZIP, "(layer)"),
    ]


def test_a_layer_that_lies_about_gzip_is_refused(tmp_path):
    raw = write_raw_layer(
        tmp_path / "raw.tar",
        [("var", "dir", None), ("var/task", "dir", None), ("var/task/app.py", "file", HANDLER)],
        gzipped=False,
    )
    layout = _layout(tmp_path, [(raw, MediaType.OCI_LAYER_GZIP)], cmd="app.handler")
    assert _preflight(layout)[0] == [(Check.LAMBDA_GZIP, "(layer)")]


def test_a_zstd_media_type_is_refused(tmp_path):
    layout = _layout(tmp_path, [(_good_layer(tmp_path), MediaType.OCI_LAYER_ZSTD)])
    assert _preflight(layout)[0] == [(Check.LAMBDA_MEDIA_TYPE, "(layer)")]


def test_mixed_media_types_are_refused(tmp_path):
    # A Docker schema 2 manifest over an OCI config and OCI layers.
    layout = _layout(
        tmp_path,
        [(_good_layer(tmp_path), MediaType.OCI_LAYER_GZIP)],
        manifest_type=MediaType.DOCKER_MANIFEST,
    )
    assert _preflight(layout)[0] == [
        (Check.LAMBDA_MEDIA_TYPE, "(config)"),
        (Check.LAMBDA_MEDIA_TYPE, "(layer)"),
    ]


def test_hardlinks_are_refused(tmp_path):
    layer = write_raw_layer(
        tmp_path / "links.tar.gz",
        [
            ("var", "dir", None),
            ("var/task", "dir", None),
            ("var/task/app.py", "file", HANDLER),
            ("var/task/copy.py", "hardlink", "var/task/app.py"),
        ],
    )
    layout = _layout(tmp_path, [(layer, MediaType.OCI_LAYER_GZIP)], cmd="app.handler")
    assert _preflight(layout)[0] == [(Check.LAMBDA_HARDLINK, "/var/task/copy.py")]


def test_files_without_their_parent_directory_entry_are_refused(tmp_path):
    # var/task/ exists, var/task/pkg/ has no entry (nlewo/nix2container#54's shape), and
    # var/task/late/ comes only after its file (directories at the end of the stream).
    layer = write_raw_layer(
        tmp_path / "parents.tar.gz",
        [
            ("var", "dir", None),
            ("var/task", "dir", None),
            ("var/task/app.py", "file", HANDLER),
            ("var/task/pkg/__init__.py", "file", b""),
            ("var/task/late/x.py", "file", b""),
            ("var/task/late", "dir", None),
        ],
    )
    layout = _layout(tmp_path, [(layer, MediaType.OCI_LAYER_GZIP)], cmd="app.handler")
    assert _preflight(layout)[0] == [
        (Check.LAMBDA_PARENT_DIRECTORY, "/var/task/pkg/__init__.py"),
        (Check.LAMBDA_PARENT_DIRECTORY, "/var/task/late/x.py"),
    ]


def test_an_image_over_the_size_limit_is_refused(tmp_path):
    # 10 GB of test data is not written here: the same count against a limit of 1,000 bytes.
    big = [*GOOD_ENTRIES, LayerEntry("var/task/data.bin", data=b"\0" * 2000)]
    layout = _layout(tmp_path, [(_good_layer(tmp_path, big), MediaType.OCI_LAYER_GZIP)])
    assert _preflight(layout, max_uncompressed=1000)[0] == [(Check.LAMBDA_SIZE, "(all layers)")]
    assert _preflight(layout, max_uncompressed=10_000)[0] == []


def test_a_handler_whose_module_is_missing_is_refused(tmp_path):
    layout = _layout(
        tmp_path, [(_good_layer(tmp_path), MediaType.OCI_LAYER_GZIP)], cmd="app.lambda_fn.handler"
    )
    assert _preflight(layout)[0] == [(Check.LAMBDA_HANDLER, "app.lambda_fn.handler")]


def test_a_handler_in_a_whited_out_file_is_missing(tmp_path):
    upper = write_raw_layer(
        tmp_path / "upper.tar.gz",
        [("var", "dir", None), ("var/task", "dir", None), ("var/task/app", "opaque", None)],
    )
    layers = [(_good_layer(tmp_path), MediaType.OCI_LAYER_GZIP), (upper, MediaType.OCI_LAYER_GZIP)]
    # The opaque marker's own directory (var/task/app) has no entry in the upper layer either.
    assert _preflight(_layout(tmp_path, layers))[0] == [
        (Check.LAMBDA_PARENT_DIRECTORY, "/var/task/app/.wh..wh..opq"),
        (Check.LAMBDA_HANDLER, "app.main.handler"),
    ]


def test_an_architecture_lambda_does_not_run_is_refused(tmp_path):
    layout = _layout(
        tmp_path,
        [(_good_layer(tmp_path), MediaType.OCI_LAYER_GZIP)],
        platform=Platform("linux", "ppc64le"),
    )
    assert _preflight(layout)[0] == [(Check.LAMBDA_ARCHITECTURE, "(image config)")]


def test_a_command_that_is_no_python_handler_is_noted_not_failed(tmp_path):
    layout = _layout(
        tmp_path, [(_good_layer(tmp_path), MediaType.OCI_LAYER_GZIP)], cmd="/usr/bin/python3.13"
    )
    findings, notes = _preflight(layout)
    assert findings == []
    assert notes == [
        "CMD '/usr/bin/python3.13' is not a Python handler (module.function): not checked"
    ]


@pytest.mark.parametrize("platform", [AMD64, ARM64])
def test_crossdock_verify_target_lambda_names_the_lambda_error(tmp_path, platform):
    layer = write_raw_layer(
        tmp_path / "links.tar.gz",
        [
            ("var", "dir", None),
            ("var/task", "dir", None),
            ("var/task/app.py", "file", HANDLER),
            ("var/task/copy.py", "hardlink", "var/task/app.py"),
        ],
    )
    layout = _layout(
        tmp_path, [(layer, MediaType.OCI_LAYER_GZIP)], platform=platform, cmd="app.handler"
    )
    _register_commands()
    # The crafted image has no runtime (no entrypoint, no Python), so the startup check (would
    # the container start?) is allowed here: this test is about what Lambda refuses.
    result = CliRunner().invoke(
        app,
        ["verify", "--target", "lambda", "--allow", "startup:*", "--json", str(layout)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 6, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    (failure,) = report["platforms"][0]["failures"]
    assert failure["check"] == "lambda-hardlink"
    assert re.search(r"UnsupportedImageLayerDetected", failure["found"])
    # Without --target lambda the same image passes verification (docker would run it).
    plain = CliRunner().invoke(app, ["verify", "--allow", "startup:*", "--json", str(layout)])
    assert plain.exit_code == 0, plain.output
