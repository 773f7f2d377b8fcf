"""The stage's base recipes (stage/bases.toml read by stage/make_bases.py): a second Debian root
filesystem (bookworm) is its own recipe, and adding it leaves the trixie bases' recipe, and so
their digests, as they were."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

STAGE = Path(__file__).resolve().parents[2] / "stage"


@pytest.fixture(scope="module")
def make_bases() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_bases", STAGE / "make_bases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_bases"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_each_base_gets_its_rootfs_recipe(make_bases: ModuleType) -> None:
    cfg = make_bases.load_config(STAGE / "bases.toml")
    by_name = {base.name: cfg.rootfs_of(base) for base in cfg.bases}
    trixie, bookworm = by_name["python-slim"], by_name["python-slim-bookworm"]
    assert by_name["lambda-python"] == trixie
    assert trixie.name is None and trixie.recipe is cfg.rootfs  # the [rootfs] table itself
    assert bookworm.name == "bookworm" and bookworm.recipe["suite"] == "bookworm"
    assert "python3.11" in bookworm.recipe["packages"]
    amd64 = cfg.platforms["amd64"]
    # Tar and log names: the default keeps the plain architecture, so its cached tars are found.
    assert trixie.slug(amd64) == "amd64"
    assert bookworm.slug(amd64) == "bookworm-amd64"
    trixie_argv = make_bases.mmdebstrap_argv(trixie, amd64, None, "out.tar")
    bookworm_argv = make_bases.mmdebstrap_argv(bookworm, amd64, None, "out.tar")
    assert not any(a.startswith("--setup-hook") for a in trixie_argv)
    assert trixie_argv[-2:] == ["trixie", "out.tar"]
    assert "--setup-hook=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh" in bookworm_argv
    assert bookworm_argv[-2:] == ["bookworm", "out.tar"]
    ca = STAGE / "no-such-bundle.pem"
    keys = {
        make_bases.sha256_json(make_bases.rootfs_recipe(r, amd64, ca)) for r in (trixie, bookworm)
    }
    assert len(keys) == 2


def test_a_base_naming_an_unknown_rootfs_is_refused(make_bases: ModuleType, tmp_path: Path) -> None:
    text = (STAGE / "bases.toml").read_text().replace('rootfs = "bookworm"', 'rootfs = "sid"')
    config = tmp_path / "bases.toml"
    config.write_text(text)
    with pytest.raises(SystemExit, match="unknown rootfs variant sid"):
        make_bases.load_config(config)


@pytest.fixture(scope="module")
def base_updates(make_bases: ModuleType) -> ModuleType:
    """stage/base_updates.py, which imports make_bases (found in sys.modules, as stage.sh's
    Python finds it beside the script)."""
    spec = importlib.util.spec_from_file_location("base_updates", STAGE / "base_updates.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_base_update_is_the_same_image_plus_one_layer_in_make_bases_layout(
    make_bases: ModuleType, base_updates: ModuleType, tmp_path: Path
) -> None:
    """The second version of a base, written with make_bases.py's layout: the first version's
    layers (hard-linked, not copied), then the update's layer, its diff_id and history entry."""
    source = make_bases.Layout(tmp_path / "oci")
    layer = source.put(make_bases.OCI_LAYER_GZIP, b"a base layer")
    config: dict[str, Any] = {
        "architecture": "arm64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created_by": "base"}],
    }
    manifest = source.put_json(
        make_bases.OCI_MANIFEST,
        {
            "schemaVersion": 2,
            "mediaType": make_bases.OCI_MANIFEST,
            "config": source.put_json(make_bases.OCI_CONFIG, config),
            "layers": [layer],
        },
    )
    platform = {"architecture": "arm64", "os": "linux"}
    dest = make_bases.Layout(tmp_path / "oci-updates")
    updated = base_updates.updated_manifest(source, dest, dict(manifest, platform=platform))
    assert updated["platform"] == platform
    new_manifest = dest.read_json(updated["digest"])
    first, added = new_manifest["layers"]
    assert first == layer
    assert dest.blob_path(layer["digest"]).stat().st_ino == (
        source.blob_path(layer["digest"]).stat().st_ino
    )
    gz, diff_id = base_updates.update_layer()
    assert added == dest.put(make_bases.OCI_LAYER_GZIP, gz)
    new_config = dest.read_json(new_manifest["config"]["digest"])
    assert new_config["rootfs"]["diff_ids"] == [*config["rootfs"]["diff_ids"], diff_id]
    assert len(new_config["history"]) == 2
    assert new_config["history"][1]["comment"] == "stage/base_updates.py"
