"""Memory stays bounded on hostile images (issue 13, point 3): an ELF whose program headers sit
far past its start (the sparse 3.5 GiB ELF of the issue, scaled down but far larger than the
bound) is verified with a peak RSS under 300 MB. Measured, not timed: the child's maximum RSS
as the kernel reports it."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossdock.platform import AMD64
from tests.hostile import config_bytes, far_headers_elf_layer, oci_layout, sha256
from tests.support.layertar import fixture_bytes, write_layer
from tests.support.miniimage import base_entries

pytestmark = pytest.mark.integration

CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
PEAK_RSS_BOUND = 300 * 1024 * 1024
PADDING = 1536 * 1024 * 1024  # 1.5 GiB of zeros before the program headers


def _peak_rss_of(*args: str, env: dict[str, str]) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run ``args`` in a fresh wrapper process; its children's peak RSS is the command's."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(done.stderr)\n"
        "sys.stdout.write(done.stdout + '\\n')\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(done.returncode)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    return int(run.stdout.strip().splitlines()[-1]) * 1024, run


def _uncompressed_sha256(path: Path) -> str:
    """The diff_id of a gzip layer: the digest of its uncompressed bytes, streamed (1.5 GiB)."""
    hasher = hashlib.sha256()
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def test_an_elf_with_far_headers_is_verified_in_bounded_memory(tmp_path):
    layer_path = far_headers_elf_layer(
        tmp_path / "far.tar.gz",
        fixture_bytes("x86_64-puts.so"),
        "usr/lib/far.so",
        PADDING,
    )
    layer = layer_path.read_bytes()
    assert len(layer) < 16 * 1024 * 1024  # a small download, a huge file
    # A real amd64 root under it (libc, python3): the far ELF is the only thing to judge.
    base = write_layer(tmp_path / "base.tar", base_entries(AMD64), gzipped=False).read_bytes()
    layers = [base, layer]
    config = config_bytes(AMD64, [sha256(base), _uncompressed_sha256(layer_path)])
    layout = oci_layout(tmp_path / "layout", config, layers, AMD64)
    env = {**os.environ, "CROSSDOCK_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}
    peak, run = _peak_rss_of(CROSSDOCK, "verify", "--json", str(layout), env=env)
    assert "Traceback" not in run.stderr, run.stderr
    report = json.loads(run.stdout.strip().rsplit("\n", 1)[0])
    [platform] = report["platforms"]
    assert run.returncode == 0, platform["failures"]
    # The file was really read as an ELF (its headers found past the padding), not skipped.
    assert platform["counts"]["elf"] == 4  # libc, libstdc++, python3 and the far one
    assert not platform["failures"]
    assert peak < PEAK_RSS_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
