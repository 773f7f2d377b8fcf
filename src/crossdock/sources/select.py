"""Which images of a source a caller asked for: the platforms it names, never an attestation."""

from __future__ import annotations

from collections.abc import Sequence

from crossdock.platform import Platform

__all__ = ["wanted"]


def wanted(platform: Platform | None, platforms: Sequence[Platform]) -> bool:
    """Whether an image of ``platform`` (None: not said) is one of ``platforms`` (empty: any).
    Attestation manifests (``unknown/unknown``, which BuildKit adds) are not images."""
    if platform is not None and platform.os == "unknown":
        return False
    if not platforms or platform is None:
        return True
    return any(p.matches(platform.os, platform.architecture, platform.variant) for p in platforms)
