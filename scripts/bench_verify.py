"""Time verification inside a build: uncached, cold cache, warm cache, warm with a new app layer.

Usage: uv run python scripts/bench_verify.py [--layout DIR] [--build]

Reads the images of an OCI layout written by ``crossdock build`` (the example service by
default, built into DIR first when DIR is missing or --build is given; needs the local stage and
``(cd example/backend/api && uv lock)``). Each image is verified the way the native backend does
it: the base once (all its files), then the image with ``first_layer`` = the base's layer count.
Prints seconds; asserts nothing about them.
"""

# ruff: noqa: T201 - a benchmark prints its numbers
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from crossdock.image.config import ImageConfig
from crossdock.image.digest import Digest
from crossdock.platform import Platform
from crossdock.progress import NO_PROGRESS
from crossdock.rootfs.baseprofile import BaseProfile, read_base_profile
from crossdock.rootfs.fsview import LayerFS
from crossdock.verify import verify_image

# The layers crossdock adds on top of the base: dependencies, then the service's code.
_ADDED_LAYERS = 2


@dataclass(frozen=True)
class _Image:
    platform: Platform
    config: ImageConfig
    paths: list[Path]
    digests: list[Digest | None]
    profile: BaseProfile

    @property
    def base_count(self) -> int:
        return len(self.paths) - _ADDED_LAYERS


def _blob(layout: Path, digest: str) -> Path:
    algorithm, hex_ = digest.split(":", 1)
    return layout / "blobs" / algorithm / hex_


def _images(layout: Path) -> list[_Image]:
    top = json.loads((layout / "index.json").read_text())
    index = json.loads(_blob(layout, top["manifests"][0]["digest"]).read_text())
    manifests = index["manifests"] if "manifests" in index else [top["manifests"][0]]
    images = []
    for entry in manifests:
        manifest = json.loads(_blob(layout, entry["digest"]).read_text())
        config = ImageConfig.parse(_blob(layout, manifest["config"]["digest"]).read_bytes())
        paths = [_blob(layout, layer["digest"]) for layer in manifest["layers"]]
        digests: list[Digest | None] = [Digest(layer["digest"]) for layer in manifest["layers"]]
        base_paths = paths[: len(paths) - _ADDED_LAYERS]
        profile = read_base_profile(config, base_paths)
        images.append(_Image(config.platform, config, paths, digests, profile))
    return images


def _verify(image: _Image, cache: Path | None, *, base_too: bool) -> float:
    started = time.perf_counter()
    if base_too:
        report = verify_image(
            image.config,
            image.paths[: image.base_count],
            layer_digests=image.digests[: image.base_count],
            profile=image.profile,
            declared_platform=image.platform,
            cache_dir=cache,
        )
        if not report.passed:
            raise SystemExit(f"base failed verification for {image.platform}")
    report = verify_image(
        image.config,
        image.paths,
        layer_digests=image.digests,
        profile=image.profile,
        first_layer=image.base_count,
        declared_platform=image.platform,
        cache_dir=cache,
    )
    if not report.passed:
        raise SystemExit(f"image failed verification for {image.platform}")
    return time.perf_counter() - started


def _run(images: list[_Image], job: Callable[[_Image], float]) -> tuple[float, list[float]]:
    """Wall time and per-image times, images verified in parallel threads (as a build does)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(images)) as pool:
        each = list(pool.map(job, images))
    return time.perf_counter() - started, each


def _forget_layer(cache: Path, digest: Digest | None) -> None:
    """Drop everything cached for one layer, as if it had just been built."""
    if digest is None:
        return
    for path in cache.rglob(f"{digest.algorithm}-{digest.hex}*"):
        path.unlink()


def _build_example(layout: Path) -> None:
    from crossdock.backends.native import NativeBackend
    from crossdock.build import OutputSpec, build, make_plan
    from crossdock.config.loader import load_config

    config = load_config(
        project_dir=Path("example"),
        service="api",
        overrides={"platforms": "linux/arm64,linux/amd64"},
    )
    for attempt in ("first", "second (warm)"):
        outcome = build(
            make_plan(config), NativeBackend(), NO_PROGRESS, OutputSpec(oci_layout=layout)
        )
        verify_s = {str(r.platform): round(r.timings["verify"], 3) for r in outcome.reports}
        print(f"crossdock build, {attempt}: timings['verify'] per platform {verify_s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", type=Path, default=Path("/tmp/out-layout"))  # noqa: S108
    parser.add_argument("--build", action="store_true", help="build the example first")
    args = parser.parse_args()
    if args.build or not (args.layout / "index.json").exists():
        _build_example(args.layout)
    images = _images(args.layout)
    print("images:", ", ".join(f"{i.platform} ({len(i.paths)} layers)" for i in images))

    started = time.perf_counter()
    for image in images:
        LayerFS(image.paths, image.digests)
    print(f"LayerFS, no index cache, all images: {time.perf_counter() - started:.3f}s")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "verify"
        for label, subset in (("1 platform", images[:1]), ("2 platforms", images)):
            if len(subset) < (2 if label.startswith("2") else 1):
                continue
            shutil.rmtree(cache, ignore_errors=True)
            rows = [
                ("no cache (before)", _run(subset, lambda i: _verify(i, None, base_too=False))),
                ("cold, base+image", _run(subset, lambda i: _verify(i, cache, base_too=True))),
                ("warm cache", _run(subset, lambda i: _verify(i, cache, base_too=False))),
            ]
            for image in subset:
                _forget_layer(cache, image.digests[-1])
            rows.append(
                ("warm, new app layer", _run(subset, lambda i: _verify(i, cache, base_too=False)))
            )
            for name, (wall, each) in rows:
                per = ", ".join(f"{s:.3f}" for s in each)
                print(f"{label:12} {name:24} wall {wall:.3f}s  per image [{per}]")
        started = time.perf_counter()
        for image in images:
            LayerFS(image.paths, image.digests, index_cache=cache / "index")
        print(f"LayerFS, warm index cache, all images: {time.perf_counter() - started:.3f}s")


if __name__ == "__main__":
    main()
