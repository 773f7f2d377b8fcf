"""Prerequisites of tests: skipped on a developer's machine that lacks them, a failure in CI.

CI (``CI=true``, set by the CI runner) runs scripts/test.sh, which installs and starts everything
the tests need (stage/stage.sh: Debian packages, the registries, dockerd; the dev group: moto).
There, a missing prerequisite means the setup is broken, and a test that skipped quietly would
report a green run that checked nothing. Elsewhere a skip with the reason is the friendly answer.
"""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["in_ci", "missing", "needs", "needs_tools", "require_module"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    """Skip the test for ``reason``; in CI, fail it."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}: the CI setup must provide it", pytrace=False)
    pytest.skip(reason)


def require_module(name: str) -> ModuleType:
    """``pytest.importorskip`` that fails in CI."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        missing(f"{name} cannot be imported ({err})")


def needs(present: bool, reason: str) -> pytest.MarkDecorator:
    """A mark for a module or test whose prerequisite may be absent (``reason`` says what is
    missing): skipped without it; in CI, the module fails at collection, loudly."""
    if not present and in_ci():
        pytest.fail(f"CI=true and {reason}: the CI setup must provide it", pytrace=False)
    return pytest.mark.skipif(not present, reason=reason)


def needs_tools(*tools: str) -> pytest.MarkDecorator:
    """``needs`` for programs on PATH."""
    absent = [tool for tool in tools if shutil.which(tool) is None]
    return needs(not absent, f"{', '.join(absent)} not installed (stage/stage.sh up installs it)")
