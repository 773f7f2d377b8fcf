"""Small but real single-platform images for unit tests: real libc/libstdc++ of the platform
(the host's for amd64, Debian's cross packages for arm64), real ELF fixtures as programs and
extension modules, written as tar+gzip layers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from crossdock.image.config import ImageConfig
from crossdock.platform import AMD64, ARM64, Platform
from tests.support.prerequisites import missing

from .images import layer_file
from .layertar import Entry, fixture_bytes, write_layer

_LIBS = {
    AMD64: (Path("/lib/x86_64-linux-gnu"), "x86_64-linux-gnu", "x86_64-hello"),
    ARM64: (Path("/usr/aarch64-linux-gnu/lib"), "aarch64-linux-gnu", "aarch64-hello"),
}


def base_entries(platform: Platform) -> list[Entry]:
    """A Debian-like root: /lib -> usr/lib, libc and libstdc++ in the multiarch dir, python3.13."""
    libdir, triplet, program = _LIBS[platform]
    libc = libdir / "libc.so.6"
    if not libc.exists():
        missing(f"{libc} is not installed (stage/stage.sh up installs libc6-arm64-cross)")
    cxx = (libdir / "libstdc++.so.6").resolve()
    return [
        ("usr", "dir", None),
        ("usr/bin", "dir", None),
        ("usr/lib", "dir", None),
        ("lib", "symlink", "usr/lib"),
        (f"usr/lib/{triplet}/libc.so.6", "file", libc.read_bytes()),
        (f"usr/lib/{triplet}/{cxx.name}", "file", cxx.read_bytes()),
        (f"usr/lib/{triplet}/libstdc++.so.6", "symlink", cxx.name),
        ("usr/bin/python3.13", "file", fixture_bytes(program)),
        ("usr/bin/python3", "symlink", "python3.13"),
        ("usr/lib/python3.13/os.py", "file", b"# stdlib\n"),
        ("usr/lib/python3/dist-packages", "dir", None),
    ]


def config_for(
    platform: Platform, *, entrypoint: list[str] | None = None, layers: Sequence[Path] = ()
) -> ImageConfig:
    """A config for ``platform`` whose diff_ids are those of the layer files ``layers``."""
    data = {
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": entrypoint or ["python3"],
            "WorkingDir": "/app",
        },
        "rootfs": {"type": "layers", "diff_ids": [str(layer_file(p).diff_id) for p in layers]},
    }
    if platform.variant:
        data["variant"] = platform.variant
    return ImageConfig.from_data(data)


def image(tmp_path: Path, platform: Platform, *extra_layers: list[Entry]) -> list[Path]:
    layers = [base_entries(platform), *extra_layers]
    return [write_layer(tmp_path / f"layer{i}.tar.gz", entries) for i, entries in enumerate(layers)]
