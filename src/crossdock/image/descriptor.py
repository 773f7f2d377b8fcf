"""Descriptors: a typed, sized, digested pointer to a blob (OCI image-spec descriptor.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crossdock.image.digest import Digest
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
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        plat = data.get("platform")
        platform = None
        if isinstance(plat, Mapping):
            platform = Platform(
                str(plat.get("os", "")), str(plat.get("architecture", "")), plat.get("variant")
            )
        return cls(
            media_type=str(data["mediaType"]),
            digest=Digest(str(data["digest"])),
            size=int(data["size"]),
            platform=platform,
            annotations=dict(data.get("annotations") or {}),
            artifact_type=str(data["artifactType"]) if data.get("artifactType") else None,
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
