from __future__ import annotations

import pytest

from crossdock.errors import BaseImageError
from crossdock.platform import AMD64, ARM64
from crossdock.rootfs.baseprofile import BaseProfile, read_base_profile
from tests.support.layertar import fixture_bytes, write_layer
from tests.support.miniimage import config_for, image


@pytest.mark.parametrize("platform", [AMD64, ARM64])
def test_profile_is_read_from_the_layers(tmp_path, platform):
    triplet = "x86_64-linux-gnu" if platform == AMD64 else "aarch64-linux-gnu"
    profile = read_base_profile(config_for(platform), image(tmp_path, platform))
    assert profile.platform == platform
    assert profile.python_version == "3.13"
    assert profile.python_path == "/usr/bin/python3.13"
    assert profile.python_stdlib == "/usr/lib/python3.13"
    # Debian layout: no site-packages in the stdlib, so dist-packages, /usr/local first.
    assert profile.site_packages[0] == "/usr/local/lib/python3.13/dist-packages"
    # Debian 12's glibc (host and cross packages) defines GLIBC_2.36 at most.
    assert profile.glibc_version == "2.36"
    assert profile.libc_path == f"/usr/lib/{triplet}/libc.so.6"
    assert profile.glibcxx == (3, 4, 30)
    assert profile.working_dir == "/app"
    assert profile.environment["PATH"].startswith("/usr/local/sbin")
    assert BaseProfile.loads(profile.dumps()) == profile


def test_official_image_layout_wins_by_path(tmp_path):
    layers = image(
        tmp_path,
        AMD64,
        [
            ("usr/local/bin/python3.12", "file", fixture_bytes("x86_64-hello")),
            ("usr/local/bin/python3", "symlink", "python3.12"),
            ("usr/local/lib/python3.12/site-packages", "dir", None),
        ],
    )
    profile = read_base_profile(config_for(AMD64), layers)
    # /usr/local/bin comes first on PATH, so its python3 is the one a shell runs.
    assert profile.python_path == "/usr/local/bin/python3.12"
    assert profile.site_packages == ("/usr/local/lib/python3.12/site-packages",)


def test_missing_python_and_glibc_say_what_was_searched(tmp_path):
    no_python = write_layer(tmp_path / "a.tar.gz", [("etc/hostname", "file", b"x")])
    with pytest.raises(BaseImageError, match=r"no Python 3 interpreter.*/usr/local/bin"):
        read_base_profile(config_for(AMD64), [no_python])
    no_libc = write_layer(
        tmp_path / "b.tar.gz", [("usr/bin/python3.13", "file", fixture_bytes("x86_64-hello"))]
    )
    with pytest.raises(BaseImageError, match=r"no glibc.*/lib/x86_64-linux-gnu/libc.so.6"):
        read_base_profile(config_for(AMD64), [no_libc])
