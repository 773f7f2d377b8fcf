"""The record of a native build's last result, so that a build whose inputs have not changed
answers at once instead of installing, packing and verifying the same bytes again.

A record is keyed by a hash of everything the result depends on:

- the plan (``repr``: every field, the configuration and options it was made from, the target's
  runtime, the git revision annotation, SOURCE_DATE_EPOCH),
- the base image's digest as the registry resolves its tag *now* (a moved tag is a change),
- the service's files as the app layer would take them (path, mode, bytes), the same for every
  folder its own packages may be built from (workspace members, path dependencies:
  ``ServiceProject.source_dirs``), and every ``uv.lock``, ``pyproject.toml`` and ``uv.toml``
  from the service folder up to the file system's root (what ``uv export --locked`` reads),
- the verification allow rules,
- crossdock itself: its version and a hash of its own source files (a changed crossdock is a
  change, even at the same version number), and the uv binary it installs with.

What is recorded is only ever a build that passed verification: the images' exact bytes
(manifests, configs, index) and the per-platform reports. A verification result is a fact about
bytes: the recorded manifests name every layer and the config by digest, so the same key means
the same image, already checked. The record is checksummed and re-validated on read (a damaged
or foreign record is ignored and the build runs), and every layer it names must still be in the
blob cache, unchanged (crossdock.cache re-hashes a blob whose file changed), or the build runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock._version import __version__
from crossdock.backends.base import BuildOutcome, BuildReport, LayerInfo, WheelInfo
from crossdock.cache import BlobCache, CacheLayout, Records
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.digest import Digest
from crossdock.image.document import checked, digest_value, optional, require, texts
from crossdock.image.manifest import Index, Manifest
from crossdock.image.referrer import Referrer
from crossdock.layers import entries_from_tree
from crossdock.plan import BuildPlan
from crossdock.platform import Platform

__all__ = [
    "RecordInputs",
    "RecordedVerification",
    "crossdock_identity",
    "inputs_key",
    "load_outcome",
    "store_outcome",
]

# Bump when what a record holds, or what its key covers, changes.
_RECORD_VERSION = 4  # 2: source_dirs, local_packages; 3: crossdock.cache records; 4: referrers
_FORMAT = f"last-build/{_RECORD_VERSION}"
_LOCK_FILES = ("uv.lock", "pyproject.toml", "uv.toml")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RecordedVerification:
    """The verification report of a recorded build, as it was reported (JSON)."""

    data: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.data.get("passed"))

    @property
    def counts(self) -> dict[str, int]:
        """The files checked, by kind, as the build reported them (``_report_from`` checked
        their types): what a build answered from this record says it verified."""
        return dict(self.data.get("counts") or {})

    def to_json(self) -> dict[str, Any]:
        return self.data


@dataclass(frozen=True)
class RecordInputs:
    """What a record's key is made of besides the base's digest, which is resolved at each
    build: the plan (its ``repr``), the folders the image takes files from and the allow rules.
    Kept as data so that a build answered before its configuration is validated
    (``crossdock.cli.build_shortcut``) computes the same key as ``inputs_key``."""

    plan: str
    folders: tuple[Path, ...]
    service_dir: Path
    exclude: tuple[str, ...]
    allow: tuple[str, ...]

    @classmethod
    def of(cls, plan: BuildPlan, allow: tuple[str, ...]) -> RecordInputs:
        return cls(
            plan=repr(plan),
            folders=tuple(plan.project.source_dirs or (plan.service_dir,)),
            service_dir=plan.service_dir,
            exclude=tuple(plan.exclude),
            allow=tuple(allow),
        )

    def key(self, base_digest: Digest, service_lines: list[bytes] | None = None) -> str:
        """The hash of everything a native build's result depends on (see the module's doc);
        the service's and lock files are read now, unless ``service_lines`` were just read."""
        h = hashlib.sha256()
        for part in (
            crossdock_identity(),
            self.plan,
            str(base_digest),
            json.dumps(list(self.allow)),
        ):
            h.update(part.encode())
            h.update(b"\0")
        for line in self.service_lines() if service_lines is None else service_lines:
            h.update(line)
            h.update(b"\0")
        return h.hexdigest()

    def service_lines(self) -> list[bytes]:
        """One line per file the image takes from the service's folders (path, mode, hash)
        and per lock or pyproject file up the tree (path, hash), read now."""
        return list(self._service_lines())

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "folders": [str(f) for f in self.folders],
            "service_dir": str(self.service_dir),
            "exclude": list(self.exclude),
            "allow": list(self.allow),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordInputs:
        """What ``to_json`` wrote, each field of its type; anything else raises."""
        return cls(
            plan=require(data, "plan", str, _WHAT),
            folders=tuple(Path(folder) for folder in texts(data["folders"], _WHAT)),
            service_dir=Path(require(data, "service_dir", str, _WHAT)),
            exclude=texts(data["exclude"], _WHAT),
            allow=texts(data["allow"], _WHAT),
        )

    def _service_lines(self) -> Iterator[bytes]:
        for folder in self.folders:
            yield f"D {folder}".encode()
            for entry in entries_from_tree(folder, "", exclude=self.exclude):
                if entry.symlink is not None:
                    yield f"L {entry.path} {entry.symlink}".encode()
                elif entry.source is not None:
                    digest = _file_hash(entry.source)
                    yield f"F {entry.path} {int(entry.executable)} {digest}".encode()
        for folder in (self.service_dir.resolve(), *self.service_dir.resolve().parents):
            for name in _LOCK_FILES:
                path = folder / name
                if path.is_file():
                    yield f"P {path} {_file_hash(path)}".encode()


def inputs_key(plan: BuildPlan, base_digest: Digest, allow: tuple[str, ...]) -> str:
    """The hash of everything a native build's result depends on (see the module's doc)."""
    return RecordInputs.of(plan, allow).key(base_digest)


def crossdock_identity() -> str:
    """The record format, crossdock's version, a hash of its own files and the uv it installs
    with: a change to any of them is a change to every record key."""
    return "\0".join((_FORMAT, __version__, _crossdock_source_hash(), _uv_identity()))


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


_source_hash: str | None = None


def _crossdock_source_hash() -> str:
    """A hash of crossdock's own files (sources, defaults.toml): ~0.5 MB, read once."""
    global _source_hash  # noqa: PLW0603 - computed once per process
    if _source_hash is None:
        _source_hash = tree_hash(Path(__file__).resolve().parent.parent)
    return _source_hash


def tree_hash(root: Path) -> str:
    """A hash of every file under ``root`` but bytecode: each one's path relative to it and its
    bytes, in the order of their paths' parts. Every ``crossdock build`` computes it for its
    own ~350 files (its command line's key), so it walks with ``os.scandir``, not pathlib's
    rglob (~4 ms against 11-24 ms), in the same order as ``sorted(root.rglob("*"))``."""
    h = hashlib.sha256()
    for parts, path in sorted(_source_files(str(root), ())):
        h.update("/".join(parts).encode() + b"\0")
        h.update(Path(path).read_bytes())
    return h.hexdigest()


def _source_files(folder: str, parts: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """(parts relative to the package, path) of every file under ``folder`` but bytecode."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                if entry.name != "__pycache__":
                    yield from _source_files(entry.path, (*parts, entry.name))
            elif entry.is_file():
                yield (*parts, entry.name), entry.path


def _uv_identity() -> str:
    try:
        from uv import find_uv_bin

        binary = find_uv_bin()
        st = Path(binary).stat()
    except (ImportError, OSError):
        return "no uv"
    return f"{binary} {st.st_size} {st.st_mtime_ns}"


# -- the record file -------------------------------------------------------------------------


def _records(cache_dir: Path) -> Records:
    return CacheLayout(cache_dir).records("last-build", version=_RECORD_VERSION)


# -- outcome <-> record ----------------------------------------------------------------------


def store_outcome(cache_dir: Path, key: str, outcome: BuildOutcome) -> None:
    """Record a build that passed verification (a failed one is never recorded)."""
    if not all(getattr(r.verification, "passed", False) for r in outcome.reports):
        return
    images = []
    for image, report in zip(outcome.image_set.images, outcome.reports, strict=True):
        images.append(
            {
                "platform": str(image.platform),
                "manifest": image.manifest.raw.decode(),
                "config": image.config.raw.decode(),
                "layers": [str(blob.path) for blob in image.layers],
                "origins": [blob.origin for blob in image.layers],
                # The SBOM referrers: small JSON blobs, kept whole.
                "referrers": [
                    {
                        "manifest": referrer.manifest.raw.decode(),
                        "blobs": [data.decode() for _, data in referrer.blobs],
                    }
                    for referrer in image.referrers
                ],
                "report": report.to_json(),
            }
        )
    index = outcome.image_set.index
    _records(cache_dir).store(
        key, {"images": images, "index": None if index is None else index.raw.decode()}
    )


def load_outcome(cache_dir: Path, key: str) -> BuildOutcome | None:
    """The recorded outcome for ``key``, or None (no record, a damaged one, or a layer blob no
    longer in the cache): then the build runs."""
    blobs = CacheLayout(cache_dir).blobs
    try:
        return _records(cache_dir).load(key, lambda payload: _outcome_from(payload, blobs))
    except OSError:
        return None


# A last-build record's fields are checked for the types store_outcome writes: a record of any
# other shape raises here, and Records.load reads it as absent (the build runs).
_WHAT = "a last-build record"


def _text(value: object) -> str:
    return checked(value, str, _WHAT)


def _objects(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = require(data, key, list, _WHAT)
    for item in items:
        checked(item, dict, _WHAT)
    return items


def _outcome_from(payload: dict[str, Any], blobs: BlobCache) -> BuildOutcome | None:
    images: list[PlatformImage] = []
    reports: list[BuildReport] = []
    for item in _objects(payload, "images"):
        platform = Platform.parse(require(item, "platform", str, _WHAT))
        manifest = Manifest.parse(require(item, "manifest", str, _WHAT).encode())
        config = ImageConfig.parse(require(item, "config", str, _WHAT).encode())
        if manifest.config.digest != config.digest:
            return None
        layers = []
        for desc, path_text, origin in zip(
            manifest.layers, texts(item["layers"], _WHAT), item["origins"], strict=True
        ):
            # The blob must still be in the cache, unchanged (re-hashed if its file changed).
            path = blobs.verified(desc.digest, desc.size)
            if path is None or path != Path(path_text):
                return None
            layers.append(BlobSource(desc, path, None if origin is None else _text(origin)))
        referrers = tuple(_referrer_from(r, manifest) for r in _objects(item, "referrers"))
        if any(r is None for r in referrers):
            return None
        images.append(
            PlatformImage(
                platform, manifest, config, tuple(layers), tuple(r for r in referrers if r)
            )
        )
        reports.append(_report_from(require(item, "report", dict, _WHAT), platform))
    index_text = payload["index"]
    index = None if index_text is None else Index.parse(_text(index_text).encode())
    if index is not None and {d.digest for d in index.manifests} != {i.digest for i in images}:
        return None
    return BuildOutcome(ImageSet(tuple(images), index), tuple(reports))


def _referrer_from(data: dict[str, Any], subject: Manifest) -> Referrer | None:
    manifest = Manifest.parse(require(data, "manifest", str, _WHAT).encode())
    blobs = [text.encode() for text in texts(data["blobs"], _WHAT)]
    descriptors = [manifest.config, *manifest.layers]
    if manifest.subject is None or manifest.subject.digest != subject.digest:
        return None
    if len(blobs) != len(descriptors) or not all(
        d.digest.matches(b) for d, b in zip(descriptors, blobs, strict=True)
    ):
        return None
    return Referrer(manifest, tuple(zip(descriptors, blobs, strict=True)))


def _report_from(data: dict[str, Any], platform: Platform) -> BuildReport:
    verification = RecordedVerification(require(data, "verification", dict, _WHAT))
    if verification.data.get("passed") is not True:
        raise ValueError("a recorded build that did not pass")
    for kind, count in (optional(verification.data, "counts", dict, _WHAT) or {}).items():
        checked(count, int, f"{_WHAT}: the count of {kind!r} files checked")
    return BuildReport(
        platform=platform,
        base_digest=digest_value(data["base_digest"], _WHAT),
        image_digest=digest_value(data["image_digest"], _WHAT),
        python_version=require(data, "python_version", str, _WHAT),
        glibc_version=require(data, "glibc_version", str, _WHAT),
        python_platform=require(data, "python_platform", str, _WHAT),
        wheels=tuple(
            WheelInfo(
                require(w, "name", str, _WHAT),
                require(w, "version", str, _WHAT),
                texts(w["tags"], _WHAT),
                require(w, "built_from_sdist", bool, _WHAT),
            )
            for w in _objects(data, "wheels")
        ),
        local_packages=tuple(
            WheelInfo(
                require(w, "name", str, _WHAT),
                require(w, "version", str, _WHAT),
                texts(w["tags"], _WHAT),
                built_from_sdist=False,
            )
            for w in _objects(data, "local_packages")
        ),
        layers=tuple(
            LayerInfo(
                require(la, "role", str, _WHAT),
                digest_value(la["digest"], _WHAT),
                digest_value(la["diff_id"], _WHAT),
                _size(la["size"]),
                cached=True,
            )
            for la in _objects(data, "layers")
        ),
        verification=verification,
        timings={},
    )


def _size(value: object) -> int:
    size = checked(value, int, _WHAT)
    if size < 0:
        raise ValueError(f"{_WHAT}: a negative size")
    return size
