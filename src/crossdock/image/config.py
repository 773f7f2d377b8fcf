"""The image configuration (OCI image-spec config.md): platform, runtime settings, rootfs
diff_ids and history. Kept as the JSON mapping it is, with typed accessors, so fields crossdock
does not know about survive a round trip."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crossdock.errors import MalformedError
from crossdock.image.digest import Digest, sha256_of
from crossdock.image.document import digest_value, load_object, optional, string_map
from crossdock.platform import Platform

__all__ = ["HistoryEntry", "ImageConfig"]


@dataclass(frozen=True)
class HistoryEntry:
    created_by: str
    created: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"created_by": self.created_by}
        if self.created:
            out["created"] = self.created
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out


def _check_shape(data: Mapping[str, Any]) -> None:
    what = "image config"
    for key in ("os", "architecture", "variant", "created", "author"):
        optional(data, key, str, what)
    runtime = optional(data, "config", dict, what) or {}
    where = f"{what}: config"
    for key in ("Env", "Entrypoint", "Cmd"):
        for i, item in enumerate(optional(runtime, key, list, where) or []):
            if not isinstance(item, str):
                raise MalformedError(f"{where}: {key}[{i}] must be a string")
    for key in ("WorkingDir", "User"):
        optional(runtime, key, str, where)
    for key in ("ExposedPorts", "Volumes"):
        optional(runtime, key, dict, where)
    string_map(runtime, "Labels", where)
    rootfs = optional(data, "rootfs", dict, what) or {}
    for i, diff_id in enumerate(optional(rootfs, "diff_ids", list, f"{what}: rootfs") or []):
        digest_value(diff_id, f"{what}: rootfs.diff_ids[{i}]")
    for i, entry in enumerate(optional(data, "history", list, what) or []):
        if not isinstance(entry, dict):
            raise MalformedError(f"{what}: history[{i}] must be an object")


@dataclass(frozen=True)
class ImageConfig:
    data: Mapping[str, Any]
    raw: bytes = b""

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        """A config from outside: the fields crossdock reads are checked here, so a malformed
        one raises ``MalformedError`` now rather than a TypeError wherever it is used."""
        data = load_object(raw, "image config")
        _check_shape(data)
        return cls(data, bytes(raw))

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> ImageConfig:
        from crossdock.image.manifest import canonical_json

        return cls(data, canonical_json(data))

    @property
    def digest(self) -> Digest:
        return sha256_of(self.raw)

    @property
    def platform(self) -> Platform:
        return Platform(
            str(self.data.get("os", "")),
            str(self.data.get("architecture", "")),
            self.data.get("variant"),
        )

    @property
    def runtime(self) -> Mapping[str, Any]:
        """The ``config`` member: Env, Entrypoint, Cmd, WorkingDir, User, ExposedPorts..."""
        return self.data.get("config") or {}

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.runtime.get("Env") or []:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        return tuple(Digest(d) for d in (self.data.get("rootfs") or {}).get("diff_ids") or [])

    def with_changes(  # noqa: PLR0912 - one branch per optional change, read top to bottom
        self,
        *,
        platform: Platform | None = None,
        env: Mapping[str, str] | None = None,
        entrypoint: Sequence[str] | None = None,
        cmd: Sequence[str] | None = None,
        working_dir: str | None = None,
        user: str | None = None,
        exposed_ports: Sequence[int] = (),
        labels: Mapping[str, str] | None = None,
        created: str | None = None,
        append_layers: Sequence[tuple[Digest, HistoryEntry]] = (),
        reset_cmd: bool = False,
    ) -> ImageConfig:
        """A new config with the changes applied; ``self`` is untouched.

        ``entrypoint`` set without ``cmd`` clears the base's Cmd (Docker's rule: a new
        ENTRYPOINT resets CMD), unless ``reset_cmd`` is False and ``cmd`` is given.
        """
        data: dict[str, Any] = copy.deepcopy(dict(self.data))
        runtime: dict[str, Any] = dict(data.get("config") or {})
        if platform is not None:
            data["os"] = platform.os
            data["architecture"] = platform.architecture
            if platform.variant:
                data["variant"] = platform.variant
            else:
                data.pop("variant", None)
        if env:
            merged = self.env
            merged.update(env)
            runtime["Env"] = [f"{k}={v}" for k, v in merged.items()]
        if entrypoint is not None:
            # An empty entrypoint removes the base's (so CMD alone says what runs).
            if entrypoint:
                runtime["Entrypoint"] = list(entrypoint)
            else:
                runtime.pop("Entrypoint", None)
            if cmd is None:
                runtime.pop("Cmd", None)
        if cmd is not None:
            runtime["Cmd"] = list(cmd)
        elif reset_cmd:
            runtime.pop("Cmd", None)
        if working_dir is not None:
            runtime["WorkingDir"] = working_dir
        if user is not None:
            runtime["User"] = user
        if exposed_ports:
            ports = dict(runtime.get("ExposedPorts") or {})
            for port in exposed_ports:
                ports[f"{port}/tcp"] = {}
            runtime["ExposedPorts"] = ports
        if labels:
            merged_labels = dict(runtime.get("Labels") or {})
            merged_labels.update(labels)
            runtime["Labels"] = merged_labels
        data["config"] = runtime
        if created is not None:
            data["created"] = created
        if append_layers:
            rootfs = dict(data.get("rootfs") or {"type": "layers"})
            rootfs["diff_ids"] = [*list(rootfs.get("diff_ids") or [])] + [
                str(d) for d, _ in append_layers
            ]
            rootfs["type"] = "layers"
            data["rootfs"] = rootfs
            data["history"] = [*list(data.get("history") or [])] + [
                entry.to_json() for _, entry in append_layers
            ]
        return ImageConfig.from_data(data)
