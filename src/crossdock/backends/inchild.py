"""Work a build of several platforms does in child processes: reading a base for its profile,
and writing a dependency layer.

Why: a build's platforms run as threads of one process, and this work is mostly Python (tar
headers, each file observed for verification) that takes turns on the GIL: two platforms' bases
were read, and their dependency layers written, in about the time of one after the other. In a
child each has a core of its own: measured on the example (both platforms, 2 cores), reading the
two bases 1.7-2.0 s in threads against 1.3 s in children, writing the two dependency layers
2.6-3.0 s against 1.5-1.8 s.

A child is crossdock's own interpreter (``python -m crossdock.backends.inchild TASK``), given
its request as JSON on stdin. It does what the build would have done in its own process and
leaves the same things in crossdock's cache (observations and member indexes by layer digest,
the base's OS packages, the layer's blob), then prints what it made as JSON. Whatever goes wrong
there (it cannot start, it fails, it answers something else), the caller does the work itself,
so an error is reported as it would be without a child, and the cache never holds a fact the
caller's own checks would not accept: a profile is parsed as a cached one is, and a layer's
blob is taken from the cache by its digest, verified as any cached blob is.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossdock.cache import CacheLayout
from crossdock.children import run_child
from crossdock.errors import MalformedError
from crossdock.image.artifact import BlobSource, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.document import digest_value, require
from crossdock.image.manifest import Manifest
from crossdock.platform import Platform

if TYPE_CHECKING:
    from crossdock.layers import LayerBlob
    from crossdock.rootfs.baseprofile import BaseProfile

__all__ = ["dependency_layer_in_child", "profile_in_child", "worth_a_child"]

_BASE_PROFILE = "base-profile"
_DEPENDENCY_LAYER = "dependency-layer"
# A child's answer is a few kB (a profile) or a few words (a layer's digests).
_ANSWER_LIMIT = 1 << 20
# A child costs its interpreter's start and imports (0.3-0.5 s here) before it writes a byte;
# writing a layer costs about 10 ms per MiB of files in this process. Below this size the
# layer is written here: a workspace's 140 KiB dependency layer took 0.9 s in children (two
# starting at once) against 0.1 s in threads.
_CHILD_LAYER_BYTES = 32 << 20


def profile_in_child(base: PlatformImage, cache_dir: Path) -> BaseProfile | None:
    """The profile of ``base`` read in a child (``basepass.read_base_once``), or None."""
    from crossdock.rootfs.baseprofile import BaseProfile

    request = {
        "manifest": base64.b64encode(base.manifest.raw).decode(),
        "media_type": base.manifest.media_type,
        "config": base64.b64encode(base.config.raw).decode(),
        "platform": str(base.platform),
        "layers": [str(blob.path) for blob in base.layers],
        "cache_dir": str(cache_dir),
    }
    answer = _answer(_BASE_PROFILE, request)
    if not isinstance(answer, dict):
        return None
    try:
        return BaseProfile.from_json(answer)
    except (MalformedError, ValueError, TypeError, KeyError, IndexError):
        return None


def worth_a_child(tree: Path) -> bool:
    """Whether the files under ``tree`` are enough for a dependency layer to be written in a
    child (``_CHILD_LAYER_BYTES``): counted until there are, so a large tree is not walked."""
    total = 0
    for folder, _, names in os.walk(tree):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(folder) / name).lstat().st_size
            if total >= _CHILD_LAYER_BYTES:
                return True
    return False


def dependency_layer_in_child(
    tree: Path, image_dir: str, cache_dir: Path, *, mtime: int
) -> LayerBlob | None:
    """The layer of the dependency tree ``tree`` (at ``image_dir`` in the image) written into
    the blob cache by a child (``layerwrite.write_layer_into_cache``), or None."""
    from crossdock.layers import LayerBlob

    request = {
        "tree": str(tree),
        "image_dir": image_dir,
        "cache_dir": str(cache_dir),
        "mtime": mtime,
    }
    answer = _answer(_DEPENDENCY_LAYER, request)
    if not isinstance(answer, dict):
        return None
    what = "a child's dependency layer"
    try:
        digest = digest_value(answer["digest"], what)
        diff_id = digest_value(answer["diff_id"], what)
        size = require(answer, "size", int, what)
    except (MalformedError, ValueError, TypeError, KeyError):
        return None
    # The blob the child wrote, from the cache by its digest and checked as any cached blob.
    path = CacheLayout(cache_dir).blobs.verified(digest, size)
    return None if path is None else LayerBlob(path, digest, diff_id, size)


def _answer(task: str, request: dict[str, Any]) -> object:
    """What the child doing ``task`` printed (parsed JSON), or None when it did not answer."""
    try:
        completed = run_child(
            [sys.executable, "-m", "crossdock.backends.inchild", task],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    if completed.returncode != 0 or len(completed.stdout) > _ANSWER_LIMIT:
        return None
    try:
        return json.loads(completed.stdout)
    except ValueError:
        return None


def _read_base(request: dict[str, Any]) -> object:
    from crossdock.backends.basepass import read_base_once

    manifest = Manifest.parse(base64.b64decode(request["manifest"]), request["media_type"])
    paths = request["layers"]
    if len(paths) != len(manifest.layers):
        raise ValueError("the request names another number of layers than its manifest")
    base = PlatformImage(
        platform=Platform.parse(request["platform"]),
        manifest=manifest,
        config=ImageConfig.parse(base64.b64decode(request["config"])),
        layers=tuple(
            BlobSource(descriptor, Path(path))
            for descriptor, path in zip(manifest.layers, paths, strict=True)
        ),
    )
    return read_base_once(base, Path(request["cache_dir"])).to_json()


def _write_dependency_layer(request: dict[str, Any]) -> object:
    from crossdock.backends.layerwrite import write_layer_into_cache
    from crossdock.layers import entries_from_tree

    blob = write_layer_into_cache(
        entries_from_tree(Path(request["tree"]), request["image_dir"], keep_bytecode=True),
        Path(request["cache_dir"]),
        mtime=request["mtime"],
    )
    return {"digest": str(blob.digest), "diff_id": str(blob.diff_id), "size": blob.size}


def main(argv: list[str]) -> int:
    """The child: ``TASK`` with the request on stdin; its answer on stdout."""
    # Ended by crossdock's interrupt (SIGTERM to its children): as an exit, so that the
    # temporary files of an unfinished layer are removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    tasks = {_BASE_PROFILE: _read_base, _DEPENDENCY_LAYER: _write_dependency_layer}
    if len(argv) != 1 or argv[0] not in tasks:
        sys.stderr.write(f"usage: python -m crossdock.backends.inchild {'|'.join(tasks)}\n")
        return 2
    answer = tasks[argv[0]](json.load(sys.stdin))
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
