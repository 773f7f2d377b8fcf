"""Drop what an install from a local file records about this machine.

uv installs a wheel given as a file with ``direct_url.json`` (the ``file://`` URL of the wheel,
a temporary folder here) and ``uv_cache.json`` (the time of the build) in its ``.dist-info``.
Both differ from one build to the next, so the layer's digest would too, and both describe the
build machine, not the image. They are removed, with their ``RECORD`` rows, for the
distributions crossdock built itself (from sdists, or local projects); wheels downloaded from an
index carry neither.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from pathlib import Path

from packaging.utils import canonicalize_name

from crossdock.cache import rewrite_file

__all__ = ["PROVENANCE_FILES", "remove_install_provenance"]

PROVENANCE_FILES = ("direct_url.json", "uv_cache.json")


def remove_install_provenance(target_dir: Path, names: Collection[str]) -> None:
    """Remove ``PROVENANCE_FILES`` from the ``.dist-info`` of each distribution in ``names``."""
    wanted = {canonicalize_name(name) for name in names}
    for dist_info in sorted(target_dir.glob("*.dist-info")):
        name = dist_info.name.removesuffix(".dist-info").rpartition("-")[0]
        if canonicalize_name(name) not in wanted:
            continue
        removed = set()
        for filename in PROVENANCE_FILES:
            path = dist_info / filename
            if path.is_file():
                path.unlink()
                removed.add(f"{dist_info.name}/{filename}")
        record = dist_info / "RECORD"
        if removed and record.is_file():
            rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(r for r in rows if r[0] not in removed)
            rewrite_file(record, out.getvalue().encode())
