"""crossdock: correct multi-architecture container images for Python services.

The public API, for use as a library (the ``crossdock`` command is built on it)::

    from crossdock import load_config, make_plan, build, NativeBackend, verify_image

    config = load_config(project_dir=Path("."), service="api")
    outcome = build(make_plan(config), NativeBackend(), progress=lambda p, m: print(p, m))

Names are loaded on first use (PEP 562), so ``import crossdock`` stays cheap and modules inside
the package can import ``crossdock.__version__`` without import cycles.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crossdock._version import __version__

if TYPE_CHECKING:
    from crossdock.backends.native import NativeBackend
    from crossdock.build import OutputSpec, build, make_plan
    from crossdock.config import Config, load_config
    from crossdock.errors import CrossdockError
    from crossdock.image.artifact import ImageSet
    from crossdock.platform import AMD64, ARM64, Platform
    from crossdock.verify import verify_image

__all__ = [
    "AMD64",
    "ARM64",
    "Config",
    "CrossdockError",
    "ImageSet",
    "NativeBackend",
    "OutputSpec",
    "Platform",
    "__version__",
    "build",
    "load_config",
    "make_plan",
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
    "OutputSpec": "crossdock.build",
    "build": "crossdock.build",
    "make_plan": "crossdock.build",
    "verify_image": "crossdock.verify",
}


def __getattr__(name: str) -> Any:  # noqa: ANN401 - the attribute's own type, known to mypy above
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'crossdock' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
