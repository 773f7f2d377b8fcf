"""The stage's base recipes (stage/bases.toml read by stage/make_bases.py): a second Debian root
filesystem (bookworm) is its own recipe, and adding it leaves the trixie bases' recipe, and so
their digests, as they were."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
