from __future__ import annotations

import pytest

from crossdock.errors import ResolveError
from crossdock.resolve.resolution import read_installed


def _dist_info(root, name, version, tags, purelib):
    folder = root / f"{name}-{version}.dist-info"
    folder.mkdir()
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nLong description: here\n"
    )
    tag_lines = "".join(f"Tag: {tag}\n" for tag in tags)
    (folder / "WHEEL").write_text(
        f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {purelib}\n{tag_lines}"
    )


def test_reads_names_versions_tags_sorted(tmp_path):
    _dist_info(tmp_path, "numpy", "2.5.5", ["cp313-cp313-manylinux_2_28_aarch64"], "false")
    _dist_info(tmp_path, "docopt", "0.6.2", ["py2-none-any", "py3-none-any"], "true")
    _dist_info(tmp_path, "Typing_Extensions", "4.16.0", ["py3-none-any"], "true")
    installed = read_installed(tmp_path, frozenset({"docopt"}))
    assert [(d.name, d.version) for d in installed] == [
        ("docopt", "0.6.2"),
        ("numpy", "2.5.5"),
        ("typing-extensions", "4.16.0"),
    ]
    docopt, numpy, _ = installed
    assert docopt.tags == ("py2-none-any", "py3-none-any")
    assert docopt.pure
    assert docopt.built_from_sdist
    assert numpy.tags == ("cp313-cp313-manylinux_2_28_aarch64",)
    assert not numpy.pure
    assert not numpy.built_from_sdist


def test_incomplete_dist_info_is_an_error(tmp_path):
    (tmp_path / "broken-1.0.dist-info").mkdir()
    with pytest.raises(ResolveError, match=r"broken-1\.0\.dist-info is incomplete"):
        read_installed(tmp_path, frozenset())
