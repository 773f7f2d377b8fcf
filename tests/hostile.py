"""Hostile inputs for tests: images, archives and layouts that lie about themselves.

Each generator writes real files (real tar headers, real JSON documents, real ELF fixtures);
what makes them hostile is only what they claim: a config's diff_ids that name other bytes, a
layout whose index fans out to the same manifest many times, a layer of huge member counts...
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

from crossdock.platform import Platform

__all__ = [
    "config_bytes",
    "docker_archive",
    "many_member_layer",
    "oci_layout",
    "sha256",
]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_bytes(platform: Platform, diff_ids: Sequence[str]) -> bytes:
    """An image config for ``platform`` claiming ``diff_ids`` (true or not)."""
    data: dict[str, object] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["python3"],
        },
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": "test"} for _ in diff_ids],
    }
    if platform.variant:
        data["variant"] = platform.variant
    return json.dumps(data, sort_keys=True).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(
    path: Path, config: bytes, layers: Sequence[bytes], *, tag: str = "test/image:latest"
) -> Path:
    """A ``docker save`` tarball (the Docker 25+ layout: blobs/sha256/HEX plus manifest.json)
    whose layers are stored under the digests of their own bytes, whatever the config says."""
    config_name = f"blobs/sha256/{hashlib.sha256(config).hexdigest()}"
    layer_names = [f"blobs/sha256/{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, config_name, config)
        for name, layer in zip(layer_names, layers, strict=True):
            _add(tar, name, layer)
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return path


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    blob = root / "blobs" / "sha256" / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def oci_layout(root: Path, config: bytes, layers: Sequence[bytes], platform: Platform) -> Path:
    """An OCI image layout of one image (uncompressed layers) under an index with its platform."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(root, config)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(root, layer)}
            for layer in layers
        ],
    }
    entry = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **_blob(root, json.dumps(manifest).encode()),
        "platform": {"os": platform.os, "architecture": platform.architecture},
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    index["manifests"] = [entry]
    (root / "index.json").write_text(json.dumps(index))
    return root


def many_member_layer(path: Path, count: int, *, name_length: int = 1) -> Path:
    """An uncompressed layer of ``count`` empty files (a tar-entry bomb when ``count`` is big)."""
    with (
        path.open("wb") as out,
        tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for number in range(count):
            info = tarfile.TarInfo(f"f{number:x}".ljust(name_length, "x"))
            tar.addfile(info)
    return path


def fanout_layout(root: Path, image: Path, *, width: int, depth: int) -> Path:
    """An OCI layout whose index names the same child index ``width`` times, ``depth`` levels
    deep, over the one image of the layout ``image`` (a few KB of JSON, width**depth paths)."""
    import shutil

    shutil.copytree(image, root)
    top = json.loads((root / "index.json").read_text())
    entries = top["manifests"]
    for _ in range(depth):
        child = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
        child["manifests"] = entries
        desc = {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            **_blob(root, json.dumps(child).encode()),
        }
        entries = [desc] * width
    top["manifests"] = entries
    (root / "index.json").write_text(json.dumps(top))
    return root


def distinct_manifests_layout(root: Path, count: int) -> Path:
    """An OCI layout whose index lists ``count`` distinct (tiny, valid) manifests."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    config = _blob(root, config_bytes(Platform("linux", "amd64"), []))
    entries = []
    for number in range(count):
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [],
            "annotations": {"n": str(number)},
        }
        entries.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **_blob(root, json.dumps(manifest).encode()),
            }
        )
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    (root / "index.json").write_text(json.dumps({**index, "manifests": entries}))
    return root


class _Padded(io.RawIOBase):
    """``head``, then ``count`` zero bytes, then ``tail``, produced as read (never whole)."""

    def __init__(self, head: bytes, count: int, tail: bytes) -> None:
        super().__init__()
        self._head = head
        self._zeros = count
        self._tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(target)
        if self._head:
            data, self._head = self._head[:want], self._head[want:]
        elif self._zeros:
            data = bytes(min(want, self._zeros))
            self._zeros -= len(data)
        else:
            data, self._tail = self._tail[:want], self._tail[want:]
        target[: len(data)] = data
        return len(data)


def far_headers_elf_layer(path: Path, elf: bytes, name: str, padding: int) -> Path:
    """A tar+gzip layer holding ``elf`` (a real 64-bit little-endian ELF) rewritten so that its
    program header table sits after ``padding`` zero bytes at the end of the file: reading its
    headers means seeking far ahead (the 3.5 GiB sparse ELF of issue 13, as a compressed layer
    of a few MB)."""
    import gzip
    import struct

    assert elf[:4] == b"\x7fELF" and elf[4] == 2 and elf[5] == 1
    (phoff,) = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    table = elf[phoff : phoff + phentsize * phnum]
    head = bytearray(elf)
    struct.pack_into("<Q", head, 0x20, len(elf) + padding)
    size = len(head) + padding + len(table)
    with (
        gzip.open(path, "wb", compresslevel=1) as out,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o755

        tar.addfile(info, io.BufferedReader(_Padded(bytes(head), padding, table)))
    return path


def extended_header_bomb_layer(path: Path, claimed: int) -> Path:
    """An uncompressed layer whose first member is a PAX extended header claiming ``claimed``
    bytes (tarfile would allocate them all to read it)."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = claimed
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    path.write_bytes(header + b"\0" * 4096)
    return path
