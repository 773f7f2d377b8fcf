"""Image manifests and indexes. A parsed value keeps the exact bytes it came from, so its digest
is the digest of those bytes (never of a re-serialization), as go-containerregistry does."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crossdock.errors import MalformedError
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.document import load_object, optional, require, string_map
from crossdock.image.mediatypes import INDEX_TYPES, MANIFEST_TYPES, MediaType
from crossdock.platform import Platform

__all__ = ["Index", "Manifest", "canonical_json", "parse_manifest_or_index"]


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """Serialize once, deterministically: sorted keys, no spaces. Push exactly these bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _descriptors(data: dict[str, Any], key: str, what: str) -> tuple[Descriptor, ...]:
    """The descriptors listed under ``key`` (absent: none); an error names the one's position."""
    items = optional(data, key, list, what) or []
    return tuple(Descriptor.from_json(x, f"{what}: {key}[{i}]") for i, x in enumerate(items))


@dataclass(frozen=True)
class Manifest:
    """A single-platform image manifest (OCI or Docker schema 2), or an OCI 1.1 artifact
    manifest (``artifact_type`` set; ``subject`` is the manifest it refers to)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    raw: bytes = b""
    artifact_type: str | None = None
    subject: Descriptor | None = None

    @classmethod
    def build(
        cls,
        media_type: str,
        config: Descriptor,
        layers: Sequence[Descriptor],
        annotations: Mapping[str, str] | None = None,
        *,
        artifact_type: str | None = None,
        subject: Descriptor | None = None,
    ) -> Manifest:
        body: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        # Docker schema 2 manifests have no annotations field.
        if annotations and media_type == MediaType.OCI_MANIFEST:
            body["annotations"] = dict(sorted(annotations.items()))
        if artifact_type:
            body["artifactType"] = artifact_type
        if subject is not None:
            body["subject"] = subject.to_json()
        return cls(
            media_type,
            config,
            tuple(layers),
            dict(annotations or {}),
            canonical_json(body),
            artifact_type,
            subject,
        )

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> Manifest:
        data = load_object(raw, "image manifest")
        return cls._from_data(data, raw, media_type)

    @classmethod
    def _from_data(cls, data: dict[str, Any], raw: bytes, media_type: str | None) -> Manifest:
        what = "image manifest"
        mt = optional(data, "mediaType", str, what) or media_type or MediaType.OCI_MANIFEST
        return cls(
            media_type=mt,
            config=Descriptor.from_json(require(data, "config", dict, what), f"{what}: config"),
            layers=_descriptors(data, "layers", what),
            annotations=string_map(data, "annotations", what),
            raw=bytes(raw),
            artifact_type=str(data["artifactType"]) if data.get("artifactType") else None,
            subject=Descriptor.from_json(data["subject"]) if data.get("subject") else None,
        )

    @property
    def digest(self) -> Digest:
        return sha256_of(self.raw)

    def descriptor(self, platform: Platform | None = None) -> Descriptor:
        """A descriptor of this manifest; an artifact's carries its type and annotations, as
        the referrers API lists them."""
        if self.artifact_type:
            return Descriptor(
                self.media_type,
                self.digest,
                len(self.raw),
                platform,
                dict(self.annotations),
                self.artifact_type,
            )
        return Descriptor(self.media_type, self.digest, len(self.raw), platform)


@dataclass(frozen=True)
class Index:
    """An image index (OCI) or manifest list (Docker): one manifest per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    raw: bytes = b""

    @classmethod
    def build(
        cls,
        media_type: str,
        manifests: Sequence[Descriptor],
        annotations: Mapping[str, str] | None = None,
    ) -> Index:
        body: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [m.to_json() for m in manifests],
        }
        if annotations and media_type == MediaType.OCI_INDEX:
            body["annotations"] = dict(sorted(annotations.items()))
        return cls(media_type, tuple(manifests), dict(annotations or {}), canonical_json(body))

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> Index:
        data = load_object(raw, "image index")
        return cls._from_data(data, raw, media_type)

    @classmethod
    def _from_data(cls, data: dict[str, Any], raw: bytes, media_type: str | None) -> Index:
        what = "image index"
        mt = optional(data, "mediaType", str, what) or media_type or MediaType.OCI_INDEX
        return cls(
            media_type=mt,
            manifests=_descriptors(data, "manifests", what),
            annotations=string_map(data, "annotations", what),
            raw=bytes(raw),
        )

    @property
    def digest(self) -> Digest:
        return sha256_of(self.raw)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))

    def find(self, platform: Platform) -> Descriptor | None:
        """The child manifest for ``platform`` (attestation entries have platform unknown/unknown
        and never match)."""
        for desc in self.manifests:
            if desc.platform and platform.matches(
                desc.platform.os, desc.platform.architecture, desc.platform.variant
            ):
                return desc
        return None

    def platforms(self) -> tuple[Platform, ...]:
        return tuple(
            d.platform for d in self.manifests if d.platform and d.platform.os != "unknown"
        )


def parse_manifest_or_index(raw: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse either kind, telling them apart by media type (or by shape, when it is missing)."""
    data = load_object(raw, "manifest")
    mt = optional(data, "mediaType", str, "manifest") or media_type
    if mt in INDEX_TYPES or (mt is None and "manifests" in data):
        return Index._from_data(data, raw, mt)
    if mt in MANIFEST_TYPES or (mt is None and "config" in data):
        return Manifest._from_data(data, raw, mt)
    raise MalformedError(
        f"unsupported manifest media type {mt!r}",
        hint="crossdock reads OCI and Docker schema 2 manifests and indexes",
    )
