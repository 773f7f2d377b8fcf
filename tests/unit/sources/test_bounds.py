"""Bounded work on hostile inputs (issue 13, point 3): an index DAG is walked once per digest,
with a limit on distinct manifests. (The layer bounds are in tests/unit/rootfs/test_bounds.py.)"""

from __future__ import annotations

import pytest

from crossdock.errors import UnsafeContentError
from crossdock.image.document import MAX_MANIFESTS
from crossdock.platform import AMD64
from crossdock.sources.oci_layout import read_oci_layout
from tests.hostile import (
    config_bytes,
    distinct_manifests_layout,
    fanout_layout,
    oci_layout,
    sha256,
)


def test_an_index_fanning_out_to_one_manifest_is_walked_once_per_digest(tmp_path):
    layer = b"\0" * 1024  # an empty tar
    image = oci_layout(tmp_path / "one", config_bytes(AMD64, [sha256(layer)]), [layer], AMD64)
    # 60 ways, 4 levels: 13 million paths to one manifest; each digest is read once.
    layout = fanout_layout(tmp_path / "fan", image, width=60, depth=4)
    assert len((layout / "index.json").read_bytes()) < 10_000
    images = [image for found in read_oci_layout(layout) for image in found.images]
    assert len(images) == 1
    assert images[0].layers[0].path.read_bytes() == layer


def test_a_layout_with_too_many_distinct_manifests_is_refused(tmp_path):
    (found,) = read_oci_layout(distinct_manifests_layout(tmp_path / "ok", MAX_MANIFESTS))
    assert len(found.images) == MAX_MANIFESTS
    with pytest.raises(UnsafeContentError, match=f"more than {MAX_MANIFESTS} distinct manifests"):
        read_oci_layout(distinct_manifests_layout(tmp_path / "many", MAX_MANIFESTS + 1))
