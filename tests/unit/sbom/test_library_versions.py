"""The versions of the libraries an SBOM template is keyed by (sbom.attach._version_of, read
from the dist-info folders on sys.path, issue 14) are importlib.metadata's answers."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from crossdock.sbom import attach


def _importlib(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


@pytest.mark.parametrize(
    "name",
    [
        "cyclonedx-python-lib",
        "license-expression",
        "Cyclonedx_Python.Lib",  # any spelling of the name
        "typing_extensions",
        "packaging",
        "rich",
        "no-such-distribution-here",
    ],
)
def test_versions_are_importlib_metadatas(name):
    attach._version_of.cache_clear()
    assert attach._version_of(name) == _importlib(name)


def test_the_first_folder_of_sys_path_that_has_the_distribution_wins(tmp_path, monkeypatch):
    for folder, version in (("first", "1.0"), ("second", "2.0")):
        info = tmp_path / folder / f"demo_lib-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: demo-lib\nVersion: {version}\n"
        )
    monkeypatch.setattr(
        sys, "path", [str(tmp_path / "missing"), *(str(tmp_path / f) for f in ("first", "second"))]
    )
    attach._version_of.cache_clear()
    try:
        assert attach._version_of("demo-lib") == _importlib("demo-lib") == "1.0"
    finally:
        attach._version_of.cache_clear()
