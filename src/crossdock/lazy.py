"""A package's names loaded on first use (PEP 562): importing a package for one light module
must not import the heavy ones its other names come from (issue 14: start-up time)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["lazy_names"]


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: each name in ``where`` is imported from its
    module when first asked for; any other name is an AttributeError, as Python's own."""

    def attribute(name: str) -> Any:  # noqa: ANN401 - the attribute's own type
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return attribute
