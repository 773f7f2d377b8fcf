"""The parts of `crossdock rebase` that decide without a registry: the rebased config, and the
refusal of a base whose glibc is older than the image's own binaries need (real ELF files)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crossdock.errors import BaseImageError
from crossdock.image.config import HistoryEntry, ImageConfig
from crossdock.image.digest import sha256_of
from crossdock.platform import AMD64
from crossdock.rebase import _rebased_config, _verify
from crossdock.registry.reference import Reference
from crossdock.rootfs.baseprofile import read_base_profile
from tests.support.images import layer_file, platform_image
from tests.support.layertar import fixture_bytes, write_layer
from tests.support.miniimage import base_entries, config_for


def _config(env: dict[str, str], diff_ids: list[str], history: list[str]) -> ImageConfig:
    return ImageConfig.from_data(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [f"{k}={v}" for k, v in env.items()], "Cmd": ["python3"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [HistoryEntry(h).to_json() for h in history],
        }
    )


def _id(text: str) -> str:
    return str(sha256_of(text.encode()))


def test_the_rebased_config_has_the_new_base_below_the_images_own_layers():
    old_base = _config(
        {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OLD": "1"}, [_id("b1")], ["b1"]
    )
    new_base = _config(
        {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "NEW": "2"},
        [_id("n1"), _id("n2")],
        ["n1", "n2"],
    )
    image = _config(
        {"PATH": "/opt/deps/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "OLD": "1", "PORT": "8080"},
        [_id("b1"), _id("deps"), _id("app")],
        ["b1", "deps", "app"],
    )
    rebased = _rebased_config(image, old_base, new_base)
    assert [str(d) for d in rebased.diff_ids] == [_id("n1"), _id("n2"), _id("deps"), _id("app")]
    assert [h["created_by"] for h in rebased.data["history"]] == ["n1", "n2", "deps", "app"]
    assert rebased.env == {
        "PATH": "/opt/deps/bin:/usr/local/bin:/usr/bin:/bin",  # crossdock's part kept
        "LANG": "C.UTF-8",
        "PORT": "8080",  # the image's own
        "NEW": "2",  # new in the base
    }  # OLD was the old base's and the new base dropped it


def test_a_base_with_an_older_glibc_than_the_images_binaries_need_is_refused(tmp_path):
    base_layer = write_layer(tmp_path / "base.tar.gz", base_entries(AMD64))
    # The image's own layer: a real x86-64 extension module linked against glibc.
    own = write_layer(
        tmp_path / "own.tar.gz",
        [
            ("app", "dir", None),
            ("app/_ext.cpython-313-x86_64-linux-gnu.so", "file", fixture_bytes("x86_64-puts.so")),
        ],
    )
    base_config = config_for(AMD64)
    real = read_base_profile(base_config, [base_layer])
    base = Reference.parse("127.0.0.1:5555/old/glibc:1")
    new = platform_image(AMD64, [layer_file(base_layer)], config=base_config.data["config"])
    layers = [*new.layers, layer_file(own).blob]
    # The rebased image's config: the base's, with the image's own layer's diff_id too.
    config = config_for(AMD64, layers=[base_layer, own])
    image = Reference.parse("127.0.0.1:5555/svc:1")
    # With the base's real glibc (2.36 on Debian 12) the module fits.
    report = _verify(tmp_path / "cache", new, real, config, layers, AMD64, (), image, base=base)
    assert report.glibc.required is not None
    # A base whose libc defines only GLIBC_2.1 is refused, naming the file and both versions
    # (the base itself counts as verified: its pass is recorded by digest in this cache).
    old = replace(real, glibc_version="2.1")
    with pytest.raises(BaseImageError) as refused:
        _verify(tmp_path / "cache", new, old, config, layers, AMD64, (), image, base=base)
    message = str(refused.value)
    assert "glibc 2.1" in message
    assert f"glibc {report.glibc.required}" in message
    assert "/app/_ext.cpython-313-x86_64-linux-gnu.so" in message
    assert "nothing was rebased" in message
