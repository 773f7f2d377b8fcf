"""Descriptors: a typed, sized, digested pointer to a blob (OCI image-spec descriptor.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crossdock.errors import MalformedError
from crossdock.image.digest import Digest
from crossdock.image.document import digest_value, optional, require, string_map
from crossdock.platform import Platform

__all__ = ["Descriptor"]


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    # OCI 1.1: what an artifact manifest holds (an SBOM, a signature); None for images.
    artifact_type: str | None = None

    @classmethod
    def from_json(cls, data: object, what: str = "descriptor") -> Descriptor:
        """A descriptor from a parsed document; a malformed one raises ``MalformedError``."""
        if not isinstance(data, Mapping):
            raise MalformedError(f"{what} is not an object")
        plat = optional(data, "platform", dict, what)
        platform = None
        if plat is not None:
            where = f"{what}: platform"
            platform = Platform(
                require(plat, "os", str, where),
                require(plat, "architecture", str, where),
                optional(plat, "variant", str, where),
            )
        size = require(data, "size", int, what)
        if size < 0:
            raise MalformedError(f"{what}: size is negative ({size})")
        return cls(
            media_type=require(data, "mediaType", str, what),
            digest=digest_value(require(data, "digest", str, what), f"{what}: digest"),
            size=size,
            platform=platform,
            annotations=string_map(data, "annotations", what),
            artifact_type=optional(data, "artifactType", str, what) or None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.platform is not None:
            plat: dict[str, str] = {
                "architecture": self.platform.architecture,
                "os": self.platform.os,
            }
            if self.platform.variant:
                plat["variant"] = self.platform.variant
            out["platform"] = plat
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out
