#!/usr/bin/env python3
"""Publish a second version of each stage base: the same image plus one layer that changes a
file (``/etc/issue``) and adds ``/etc/crossdock-stage-base-version``, same Python, same glibc.

This is what a patched base looks like to a fleet (AWS or Docker republishing python:3.13 with a
fix): every service built on the first version can be rebased onto it (``crossdock rebase``), and
``crossdock rebase --check`` sees the base move when a tag is pointed at it. The updates go to
their own tags (``library/python:3.13-slim-v2``, ``lambda/python:3.13-v2``), never over the
first versions, which other tests pin by digest.

Python 3.11 standard library only; reads the OCI layout make_bases.py wrote (``CACHE/oci``) and
writes ``CACHE/oci-updates`` (blobs hard-linked, not copied), then pushes with skopeo what the
registry does not already serve.

Usage: base_updates.py --cache CACHE --registry HOST:PORT
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
# make_bases.py's ref names -> the tag of each base's second version.
UPDATES = {
    "python-slim": "library/python:3.13-slim-v2",
    "lambda-python": "lambda/python:3.13-v2",
}
VERSION = "2"
# One day after the first versions' SOURCE_DATE_EPOCH (stage/bases.toml).
MTIME = 1767225600 + 86400
CREATED = "2026-01-02T00:00:00Z"
ISSUE = b"Debian GNU/Linux 13 \\n \\l (crossdock stage base, update 2)\n\n"


def log(message: str) -> None:
    sys.stderr.write(f"base_updates: {message}\n")


class Layout:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs = path / "blobs" / "sha256"

    def blob(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def read_json(self, digest: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.blob(digest).read_bytes())
        return data

    def put(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def put_json(self, obj: dict[str, Any], media_type: str) -> dict[str, Any]:
        return self.put(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode(), media_type)

    def link_from(self, source: Layout, digest: str) -> None:
        target = self.blob(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source.blob(digest), target)


def update_layer() -> tuple[bytes, str]:
    """The update's layer (gzip bytes) and its diff_id: parents before children, fixed mtimes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        etc = tarfile.TarInfo("etc")
        etc.type, etc.mode, etc.mtime = tarfile.DIRTYPE, 0o755, MTIME
        tar.addfile(etc)
        for name, data in (
            ("etc/crossdock-stage-base-version", f"{VERSION}\n".encode()),
            ("etc/issue", ISSUE),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    return gzip.compress(tar_bytes, compresslevel=6, mtime=0), diff_id


def updated_manifest(source: Layout, dest: Layout, descriptor: dict[str, Any]) -> dict[str, Any]:
    manifest = source.read_json(descriptor["digest"])
    config = source.read_json(manifest["config"]["digest"])
    for layer in manifest["layers"]:
        dest.link_from(source, layer["digest"])
    gz, diff_id = update_layer()
    layer = dest.put(gz, OCI_LAYER_GZIP)
    config["rootfs"]["diff_ids"].append(diff_id)
    config["history"].append(
        {
            "created": CREATED,
            "created_by": f"crossdock stage: base update {VERSION} (/etc/issue changed)",
            "comment": "stage/base_updates.py",
        }
    )
    new_manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": dest.put_json(config, OCI_CONFIG),
        "layers": [*manifest["layers"], layer],
    }
    out = dest.put_json(new_manifest, OCI_MANIFEST)
    if "platform" in descriptor:
        out["platform"] = descriptor["platform"]
    return out


def registry_digest(registry: str, repo_tag: str) -> str | None:
    repository, tag = repo_tag.rsplit(":", 1)
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            digest = response.headers.get("Docker-Content-Digest")
            return str(digest) if digest else None
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


def publish(cache: Path, registry: str) -> dict[str, str]:
    source = Layout(cache / "oci")
    dest = Layout(cache / "oci-updates")
    top = json.loads((source.path / "index.json").read_text())
    refs = {m["annotations"][REF_ANNOTATION]: m for m in top["manifests"]}
    entries = []
    published: dict[str, str] = {}
    for ref, repo_tag in UPDATES.items():
        index = source.read_json(refs[ref]["digest"])
        children = [updated_manifest(source, dest, child) for child in index["manifests"]]
        new_index = dest.put_json(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, OCI_INDEX
        )
        entries.append(dict(new_index, annotations={REF_ANNOTATION: f"{ref}-v{VERSION}"}))
        published[f"{registry}/{repo_tag}"] = new_index["digest"]
    (dest.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest.path / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, indent=2)
    )
    for (ref, repo_tag), entry in zip(UPDATES.items(), entries, strict=True):
        want = entry["digest"]
        if registry_digest(registry, repo_tag) == want:
            log(f"{registry}/{repo_tag}: up to date ({want[:19]})")
            continue
        argv = [
            "skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
            f"oci:{dest.path}:{ref}-v{VERSION}", f"docker://{registry}/{repo_tag}",
        ]  # fmt: skip
        log(shlex.join(argv))
        subprocess.run(argv, check=True)
        if registry_digest(registry, repo_tag) != want:
            raise SystemExit(
                f"{registry}/{repo_tag}: pushed {want} but the registry serves another"
            )
        log(f"{registry}/{repo_tag}: pushed {want}")
    return published


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--registry", required=True)
    args = parser.parse_args(argv)
    published = publish(args.cache, args.registry)
    (args.cache / "published-updates.json").write_text(json.dumps(published, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
