"""The one vocabulary for CPU platforms inside crossdock: OCI names (``linux/arm64/v8``).

Other spellings (``aarch64``, ``x86_64``, ``manylinux_2_28_aarch64``, ``EM_AARCH64``) appear only
in the translation tables at the edges (crossdock.wheeltags, crossdock.rootfs.elf).
"""

from __future__ import annotations

import platform as _host_platform
from dataclasses import dataclass

from crossdock.errors import ConfigError

__all__ = ["AMD64", "ARM64", "SUPPORTED", "Platform", "host_platform", "parse_platforms"]


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform: os, architecture and optional variant (OCI image-index spec names)."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``linux/arm64``, ``linux/arm64/v8``, ``arm64`` or ``amd64``."""
        parts = text.strip().split("/")
        if len(parts) == 1:
            parts = ["linux", *parts]
        if len(parts) not in (2, 3) or not all(parts):
            raise ConfigError(
                f"cannot read platform {text!r}",
                hint="write it as OS/ARCH[/VARIANT], e.g. linux/arm64 or linux/amd64",
            )
        os_name, arch = parts[0], _ARCH_ALIASES.get(parts[1], parts[1])
        variant = parts[2] if len(parts) == 3 else None
        # arm64 has exactly one variant in practice; OCI recommends writing it as v8, and
        # treating linux/arm64 and linux/arm64/v8 as one platform keeps lookups simple.
        if arch == "arm64" and variant is None:
            variant = "v8"
        return cls(os_name, arch, variant)

    @property
    def short(self) -> str:
        """``os/arch`` without the variant: what users type and what tags use."""
        return f"{self.os}/{self.architecture}"

    def tag(self, tag: str) -> str:
        """The tag of this platform's own image beside ``tag`` (``TAG-ARCH``): how every
        output names a platform's single manifest (docker archives, OCI layouts, pushes)."""
        return f"{tag}-{self.architecture}"

    def __str__(self) -> str:
        if self.variant:
            return f"{self.os}/{self.architecture}/{self.variant}"
        return self.short

    def matches(self, os_name: str, architecture: str, variant: str | None) -> bool:
        """Whether an index entry's platform fields name this platform."""
        if os_name != self.os or _ARCH_ALIASES.get(architecture, architecture) != self.architecture:
            return False
        if self.architecture == "arm64":
            return variant in (None, "v8")
        return variant == self.variant or variant is None


# Spellings people use that are not OCI's. Kept here, at the edge of input parsing.
_ARCH_ALIASES = {"aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64"}

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")
SUPPORTED = (AMD64, ARM64)


def parse_platforms(text: str | list[str]) -> tuple[Platform, ...]:
    """Parse a comma-separated list (or list) of platforms, refusing unsupported ones."""
    items = text.split(",") if isinstance(text, str) else text
    platforms: list[Platform] = []
    for item in items:
        if not item.strip():
            continue
        parsed = Platform.parse(item)
        if parsed not in SUPPORTED:
            supported = ", ".join(str(p) for p in SUPPORTED)
            raise ConfigError(
                f"platform {item!r} is not supported", hint=f"choose from {supported}"
            )
        if parsed not in platforms:
            platforms.append(parsed)
    if not platforms:
        raise ConfigError("no platform given", hint="e.g. --platform linux/arm64,linux/amd64")
    return tuple(platforms)


def host_platform() -> Platform:
    """The platform of the machine crossdock runs on."""
    return Platform.parse(f"linux/{_host_platform.machine()}")
