"""The verify cache cannot be poisoned (issue 13, case 1).

A decoy ``docker save`` tarball claims, in its config, the diff_id of a bad layer (an aarch64
``.so`` in an amd64 image) but stores a harmless layer under the harmless layer's own digest.
Before the fix, verifying the decoy cached "harmless" under the bad layer's diff_id, and the
bad image then passed ``crossdock verify`` as a tarball and as an OCI layout. Now the decoy is
refused (its layer does not match its config) and the bad image fails every time, with the
cache shared between all runs, as a shared CI cache would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossdock.platform import AMD64
from tests.hostile import config_bytes, docker_archive, oci_layout, sha256
from tests.support.layertar import fixture_bytes, write_layer
from tests.support.miniimage import base_entries

pytestmark = pytest.mark.integration

CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
SITE = "usr/local/lib/python3.13/dist-packages"


def _verify(cache: Path, image: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CROSSDOCK_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    return subprocess.run(
        [CROSSDOCK, "verify", str(image)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_a_decoy_archive_cannot_make_a_bad_image_pass(tmp_path):
    base = write_layer(tmp_path / "base.tar", base_entries(AMD64), gzipped=False).read_bytes()
    bad = write_layer(
        tmp_path / "bad.tar",
        [(f"{SITE}/evil.so", "file", fixture_bytes("aarch64-puts.so"))],
        gzipped=False,
    ).read_bytes()
    harmless = write_layer(
        tmp_path / "harmless.tar", [(f"{SITE}/evil.so", "file", b"just text")], gzipped=False
    ).read_bytes()
    config = config_bytes(AMD64, [sha256(base), sha256(bad)])

    bad_archive = docker_archive(tmp_path / "bad-image.tar", config, [base, bad])
    bad_layout = oci_layout(tmp_path / "bad-layout", config, [base, bad], AMD64)
    # Same config (so the same claimed diff_ids), but the harmless layer stored in place of the
    # bad one, under its own digest: the file name checks out, the config's claim does not.
    decoy = docker_archive(tmp_path / "decoy.tar", config, [base, harmless])

    cache = tmp_path / "shared-cache"
    for _ in range(2):  # every time, with whatever the earlier runs left in the cache
        refused = _verify(cache, decoy)
        assert refused.returncode == 12, refused.stdout + refused.stderr
        assert "does not match the diff_id" in refused.stderr
        assert "Traceback" not in refused.stderr
        for image in (bad_archive, bad_layout):
            result = _verify(cache, image)
            assert result.returncode == 6, result.stdout + result.stderr
            assert "evil.so" in result.stdout + result.stderr
