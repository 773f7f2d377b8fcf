"""Members that are dangerous to extract on a host are flagged by verify (issue 13, point 8):
absolute names, devices and fifos outside /dev, relative symlinks that climb out of the root.
Absolute symlinks (resolved inside the root by runtimes) and devices under /dev are not."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from crossdock.platform import AMD64
from crossdock.rootfs.fsview import LayerFS
from crossdock.verify import Check, verify_image
from tests.support.miniimage import config_for, image


def _layer(path: Path) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)

        add("/etc/absolute", tarfile.REGTYPE)
        add("app/fifo", tarfile.FIFOTYPE)
        add("app/disk", tarfile.BLKTYPE)
        add("dev/null", tarfile.CHRTYPE)  # a device where devices live: fine
        add("app/escape", tarfile.SYMTYPE, "../../../../etc/shadow")
        add("app/lib", tarfile.SYMTYPE, "/usr/lib")  # absolute: resolved inside the root
        add("app/sibling", tarfile.SYMTYPE, "../usr/lib")  # stays inside
    return path


def test_unsafe_members_are_anomalies(tmp_path):
    fs = LayerFS([_layer(tmp_path / "layer.tar")])
    reasons = {a.member: a.reason for a in fs.anomalies}
    assert set(reasons) == {"/etc/absolute", "app/fifo", "app/disk", "app/escape"}
    assert "absolute path" in reasons["/etc/absolute"]
    assert reasons["app/fifo"] == reasons["app/disk"] == "device or fifo outside /dev"
    assert "climbs out of the image root" in reasons["app/escape"]


def test_verify_fails_an_image_with_unsafe_members(tmp_path):
    layers = [*image(tmp_path, AMD64), _layer(tmp_path / "unsafe.tar")]
    report = verify_image(config_for(AMD64, layers=layers), layers, first_layer=1)
    flagged = {f.file.path for f in report.failures if f.check == Check.UNSAFE_PATH}
    assert flagged == {"/etc/absolute", "app/fifo", "app/disk", "app/escape"}
    assert not report.passed
