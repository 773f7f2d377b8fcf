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
registry does not already serve: the layout and the push are make_bases.py's own (``Layout``,
``push_missing``), so both scripts write and publish the same way.

Usage: base_updates.py --cache CACHE --registry HOST:PORT
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

# The layout, the registry check and the push are make_bases.py's: run as a script, this
# folder (stage/) is first on sys.path, so the stage's own Python finds it.
from make_bases import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_ANNOTATION,
    Layout,
    push_missing,
)

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
    layer = dest.put(OCI_LAYER_GZIP, gz)
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
        "config": dest.put_json(OCI_CONFIG, config),
        "layers": [*manifest["layers"], layer],
    }
    out = dest.put_json(OCI_MANIFEST, new_manifest)
    if "platform" in descriptor:
        out["platform"] = descriptor["platform"]
    return out


def publish(cache: Path, registry: str) -> dict[str, str]:
    source = Layout(cache / "oci")
    dest = Layout(cache / "oci-updates")
    top = json.loads((source.path / "index.json").read_text())
    refs = {m["annotations"][REF_ANNOTATION]: m for m in top["manifests"]}
    published: dict[str, str] = {}
    for ref, repo_tag in UPDATES.items():
        index = source.read_json(refs[ref]["digest"])
        children = [updated_manifest(source, dest, child) for child in index["manifests"]]
        new_index = dest.put_json(
            OCI_INDEX, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        )
        dest.add_ref(f"{ref}-v{VERSION}", new_index)
        published[f"{registry}/{repo_tag}"] = new_index["digest"]
    dest.write_index()
    push_missing(
        dest, registry, [(f"{ref}-v{VERSION}", repo_tag, True) for ref, repo_tag in UPDATES.items()]
    )
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
