"""crossdock: correct multi-architecture container images for Python services.

The public API, for use as a library (the ``crossdock`` command is built on it)::

    from crossdock import load_config, make_plan, NativeBackend, verify_image
    from crossdock import prepare_release, release
    from crossdock.build import build
    from crossdock.cache import CacheLayout

    config = load_config(project_dir=Path("."), service="api")
    config, publishing = prepare_release(config, to="127.0.0.1:5555/team/api:1.0")
    with CacheLayout(config.cache_dir).in_use():  # (crossdock.cache) a prune waits for both
        outcome = build(make_plan(config), NativeBackend(), progress=lambda p, m: print(p, m))
        result = release(publishing, outcome.image_set, checked=True)

A Dockerfile build releases the same way with ``BuildxBackend(dockerfile, mirrors=...,
output=StagingRepository(publishing.request.repository))`` (``DockerStore(TAG)``: into docker).

Names are loaded on first use (PEP 562), so ``import crossdock`` stays cheap and modules inside
the package can import ``crossdock.__version__`` without import cycles. ``build`` is imported
from ``crossdock.build``: a package attribute of that name is the submodule once it is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossdock._version import __version__
from crossdock.lazy import lazy_names

if TYPE_CHECKING:
    from crossdock.backends.buildx import BuildxBackend, DockerStore, StagingRepository
    from crossdock.backends.native import NativeBackend
    from crossdock.build import OutputSpec, make_plan
    from crossdock.config import Config, load_config
    from crossdock.errors import CrossdockError
    from crossdock.image.artifact import ImageSet
    from crossdock.platform import AMD64, ARM64, Platform
    from crossdock.publish.pipeline import Publishing, prepare_release, release
    from crossdock.verify import verify_image

__all__ = [
    "AMD64",
    "ARM64",
    "BuildxBackend",
    "Config",
    "CrossdockError",
    "DockerStore",
    "ImageSet",
    "NativeBackend",
    "OutputSpec",
    "Platform",
    "Publishing",
    "StagingRepository",
    "__version__",
    "load_config",
    "make_plan",
    "prepare_release",
    "release",
    "verify_image",
]

_WHERE = {
    "AMD64": "crossdock.platform",
    "ARM64": "crossdock.platform",
    "Platform": "crossdock.platform",
    "Config": "crossdock.config",
    "load_config": "crossdock.config",
    "CrossdockError": "crossdock.errors",
    "ImageSet": "crossdock.image.artifact",
    "NativeBackend": "crossdock.backends.native",
    "BuildxBackend": "crossdock.backends.buildx",
    "DockerStore": "crossdock.backends.buildx",
    "StagingRepository": "crossdock.backends.buildx",
    "OutputSpec": "crossdock.build",
    "make_plan": "crossdock.build",
    "Publishing": "crossdock.publish.pipeline",
    "prepare_release": "crossdock.publish.pipeline",
    "release": "crossdock.publish.pipeline",
    "verify_image": "crossdock.verify",
}


__getattr__ = lazy_names(__name__, _WHERE)
