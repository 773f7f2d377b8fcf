"""The Lambda preflight: what AWS Lambda refuses at deploy time, checked before anything is pushed.

docker, the Runtime Interface Emulator and ``docker inspect`` accept every defect below; Lambda
reports them one at a time, only when a function is created or updated. Each finding names the
error it prevents:

* an image index behind the tag, or a manifest, config or layer media type Lambda does not know
  ("The image manifest, config or layer media type for the source image ... is not supported";
  docker/buildx#1533, aws/aws-lambda-roadmap#82);
* a layer whose bytes are not gzip, whatever its media type says (UnsupportedImageLayerDetected;
  rules_oci#645/#777);
* hardlink entries, and entries whose parent directory has no entry of its own earlier in the same
  layer (InvalidImage: MissingParentDirectory; nlewo/nix2container#54, aspect-build/rules_aws#145:
  Lambda reads each layer as a stream and wants every directory before what it holds);
* more than 10 GB uncompressed;
* a handler (CMD ``module.function``) whose module is not in the image (Runtime.ImportModuleError);
* an architecture Lambda does not run (it runs linux x86_64 = amd64 and arm64).

Layers are read through their member index (``layerindex``, cached by layer digest), never
extracted.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from crossdock.image.config import ImageConfig
from crossdock.image.digest import Digest
from crossdock.image.mediatypes import MediaType
from crossdock.rootfs.fsview import LayerFS
from crossdock.rootfs.layerindex import IndexCache, Member, MemberType, layer_members
from crossdock.verify.report import (
    AllowRule,
    Check,
    FileRef,
    Finding,
    PlatformReport,
    apply_allow,
)
from crossdock.verify.startup import find_module, handler_module

__all__ = [
    "LAMBDA_ERRORS",
    "LAMBDA_MAX_UNCOMPRESSED",
    "PreflightImage",
    "PreflightLayer",
    "add_to_report",
    "lambda_preflight",
]

# Lambda's quota for a container image: 10 GB uncompressed, all layers together.
LAMBDA_MAX_UNCOMPRESSED = 10 * 1024**3

# What Lambda answers for each defect (the error this check prevents).
LAMBDA_ERRORS: dict[Check, str] = {
    Check.LAMBDA_SINGLE_MANIFEST: "InvalidParameterValueException: The image manifest, config "
    "or layer media type for the source image is not supported (an image index)",
    Check.LAMBDA_MEDIA_TYPE: "InvalidParameterValueException: The image manifest, config or "
    "layer media type for the source image is not supported",
    Check.LAMBDA_GZIP: "InvalidImage: UnsupportedImageLayerDetected",
    Check.LAMBDA_HARDLINK: "InvalidImage: UnsupportedImageLayerDetected (hardlink entry)",
    Check.LAMBDA_PARENT_DIRECTORY: "InvalidImage: MissingParentDirectory: Parent directory "
    "does not exist for file",
    Check.LAMBDA_SIZE: "InvalidParameterValueException: image size exceeds Lambda's 10 GB "
    "uncompressed limit",
    Check.LAMBDA_HANDLER: "Runtime.ImportModuleError: Unable to import module",
    Check.LAMBDA_ARCHITECTURE: "InvalidParameterValueException: the image's architecture is "
    "not one Lambda runs (x86_64 = amd64, arm64)",
}

_MANIFEST_TYPES = frozenset({MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST})
_ARCHITECTURES = frozenset({"amd64", "arm64"})
_GZIP_MAGIC = b"\x1f\x8b"
# A layer rarely misses more than a few parents; past this many, one line says how many more.
_MAX_PARENT_FINDINGS_PER_LAYER = 5
# "module.function", the module possibly dotted or under a folder ("src/app.handler").
_HANDLER_RE = re.compile(r"^(?P<module>\w[\w./-]*)\.(?P<function>[A-Za-z_]\w*)$")
_DEFAULT_TASK_ROOT = "/var/task"


@dataclass(frozen=True)
class PreflightLayer:
    media_type: str
    digest: Digest | None  # verified digest of the blob at ``path`` (None: unknown)
    path: Path


@dataclass(frozen=True)
class PreflightImage:
    """What the preflight reads of one single-platform image."""

    manifest_media_type: str
    config_media_type: str
    config: ImageConfig
    layers: tuple[PreflightLayer, ...]
    behind_index: bool  # the reference given to Lambda names an index, not this manifest


def lambda_preflight(
    image: PreflightImage,
    *,
    index_cache: Path | None = None,
    max_uncompressed: int = LAMBDA_MAX_UNCOMPRESSED,
) -> tuple[list[Finding], list[str]]:
    """Every reason Lambda would refuse ``image``, as findings; and notes on what was skipped."""
    findings: list[Finding] = []
    notes: list[str] = []
    if image.behind_index:
        findings.append(
            _finding(
                Check.LAMBDA_SINGLE_MANIFEST,
                "(image index)",
                "a single-platform image manifest",
                "an image index",
                "tag each platform's manifest on its own (crossdock build --target lambda does)",
            )
        )
    findings += _media_types(image)
    findings += _architecture(image.config)
    cache = IndexCache(index_cache) if index_cache is not None else None
    total = 0
    for number, layer in enumerate(image.layers):
        if not _is_gzip(layer.path):
            findings.append(
                _finding(
                    Check.LAMBDA_GZIP,
                    "(layer)",
                    "gzip-compressed layer bytes",
                    "uncompressed or another compression",
                    "recompress the layer with gzip",
                    layer=(number, layer.digest),
                )
            )
        members, _ = layer_members(layer.path, layer.digest, cache)
        total += _uncompressed_size(members)
        findings += _layer_entries(members, number, layer.digest)
    if total > max_uncompressed:
        findings.append(
            _finding(
                Check.LAMBDA_SIZE,
                "(all layers)",
                f"at most {max_uncompressed:,} bytes uncompressed",
                f"{total:,} bytes",
                "drop what the function does not need (tests, docs, unused dependencies)",
            )
        )
    handler_finding, note = _handler(image, index_cache)
    if handler_finding is not None:
        findings.append(handler_finding)
    if note:
        notes.append(note)
    return findings, notes


def _finding(
    check: Check,
    path: str,
    expected: str,
    found: str,
    fix: str,
    *,
    layer: tuple[int, Digest | None] | None = None,
) -> Finding:
    ref = FileRef(
        path,
        layer[0] if layer else None,
        str(layer[1]) if layer and layer[1] else None,
    )
    return Finding(check, ref, expected, f"{found} (Lambda: {LAMBDA_ERRORS[check]})", fix)


def _media_types(image: PreflightImage) -> list[Finding]:
    """Known types, all of one family: a Docker manifest with OCI layers (or the reverse) is
    the "mixed media types" image Lambda refuses."""
    manifest_type = image.manifest_media_type
    if manifest_type not in _MANIFEST_TYPES:
        return [
            _finding(
                Check.LAMBDA_MEDIA_TYPE,
                "(manifest)",
                " or ".join(sorted(_MANIFEST_TYPES)),
                manifest_type or "no media type",
                "push an OCI or Docker schema 2 image manifest",
            )
        ]
    docker = manifest_type == MediaType.DOCKER_MANIFEST
    config_type = MediaType.DOCKER_CONFIG if docker else MediaType.OCI_CONFIG
    layer_type = MediaType.DOCKER_LAYER_GZIP if docker else MediaType.OCI_LAYER_GZIP
    out: list[Finding] = []
    if image.config_media_type != config_type:
        out.append(
            _finding(
                Check.LAMBDA_MEDIA_TYPE,
                "(config)",
                f"{config_type} (the manifest is {manifest_type})",
                image.config_media_type,
                "type the config like the manifest (both OCI or both Docker)",
            )
        )
    out.extend(
        _finding(
            Check.LAMBDA_MEDIA_TYPE,
            "(layer)",
            f"{layer_type} (the manifest is {manifest_type})",
            layer.media_type,
            "gzip every layer and type it like the manifest (both OCI or both Docker)",
            layer=(number, layer.digest),
        )
        for number, layer in enumerate(image.layers)
        if layer.media_type != layer_type
    )
    return out


def _architecture(config: ImageConfig) -> list[Finding]:
    platform = config.platform
    if platform.os == "linux" and platform.architecture in _ARCHITECTURES:
        return []
    return [
        _finding(
            Check.LAMBDA_ARCHITECTURE,
            "(image config)",
            "linux/amd64 or linux/arm64",
            str(platform),
            "build the image for linux/arm64 (Graviton) or linux/amd64",
        )
    ]


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def _uncompressed_size(members: Sequence[Member]) -> int:
    """Where the last member's data ends: the uncompressed tar, less its end-of-archive blocks."""
    return max((m.offset + m.size for m in members), default=0)


def _layer_entries(members: Sequence[Member], number: int, digest: Digest | None) -> list[Finding]:
    """Hardlinks, and entries whose parent directories are not entries earlier in this layer."""
    findings: list[Finding] = []
    seen_dirs: set[str] = {"/"}
    missing = 0
    for member in members:
        path = member.path
        if path is None:
            continue  # climbs out of the root: the unsafe-path check reports it
        if member.type == MemberType.HARDLINK:
            findings.append(
                _finding(
                    Check.LAMBDA_HARDLINK,
                    path,
                    "a regular file or symlink",
                    f"a hardlink to {member.linkname}",
                    "store the file itself (or a symlink) instead of a hardlink",
                    layer=(number, digest),
                )
            )
        parent = posixpath.dirname(path)
        if parent not in seen_dirs:
            missing += 1
            if missing <= _MAX_PARENT_FINDINGS_PER_LAYER:
                findings.append(
                    _finding(
                        Check.LAMBDA_PARENT_DIRECTORY,
                        path,
                        f"a directory entry for {parent} before it in this layer",
                        "no such entry",
                        "write every parent directory into the layer before its contents",
                        layer=(number, digest),
                    )
                )
        if member.type == MemberType.DIRECTORY:
            seen_dirs.add(path)
    if missing > _MAX_PARENT_FINDINGS_PER_LAYER:
        findings.append(
            _finding(
                Check.LAMBDA_PARENT_DIRECTORY,
                f"(and {missing - _MAX_PARENT_FINDINGS_PER_LAYER} more entries)",
                "a directory entry for each parent, earlier in the layer",
                "no such entries",
                "write every parent directory into the layer before its contents",
                layer=(number, digest),
            )
        )
    return findings


# -- the handler --------------------------------------------------------------------------------


def _handler(image: PreflightImage, index_cache: Path | None) -> tuple[Finding | None, str | None]:
    cmd = [str(a) for a in image.config.runtime.get("Cmd") or []]
    if not cmd:
        return None, "no CMD: the handler must come from the function's ImageConfig; not checked"
    match = _HANDLER_RE.match(cmd[0])
    if match is None:
        return None, f"CMD {cmd[0]!r} is not a Python handler (module.function): not checked"
    module = handler_module(cmd[0])
    fs = LayerFS(
        [layer.path for layer in image.layers],
        [layer.digest for layer in image.layers],
        index_cache=index_cache,
    )
    roots = _search_path(image.config)
    found = find_module(fs, module, roots)  # verify.startup's resolver, as CPython imports
    if found is not None:
        return None, None
    return (
        _finding(
            Check.LAMBDA_HANDLER,
            cmd[0],
            f"module {module} under {', '.join(roots)}",
            "no such module in the image",
            "check the handler (CMD) against the files in LAMBDA_TASK_ROOT",
        ),
        None,
    )


def _search_path(config: ImageConfig) -> list[str]:
    """Where the runtime imports the handler from: the task root, then PYTHONPATH."""
    env = config.env
    roots = [env.get("LAMBDA_TASK_ROOT") or _DEFAULT_TASK_ROOT]
    roots += [p for p in env.get("PYTHONPATH", "").split(":") if p.startswith("/")]
    if runtime_dir := env.get("LAMBDA_RUNTIME_DIR"):
        roots.append(runtime_dir)
    return list(dict.fromkeys(roots))


def add_to_report(
    report: PlatformReport,
    findings: Sequence[Finding],
    notes: Sequence[str],
    allow: Iterable[str | AllowRule] = (),
) -> PlatformReport:
    """``report`` with the preflight's findings (``--allow`` rules applied) and notes added."""
    rules = [a if isinstance(a, AllowRule) else AllowRule.parse(a) for a in allow]
    failures, allowed = apply_allow(findings, rules)
    return replace(
        report,
        checks=tuple(dict.fromkeys([*report.checks, *(str(c) for c in LAMBDA_ERRORS)])),
        notes=(*report.notes, *notes),
        failures=(*report.failures, *failures),
        allowed=(*report.allowed, *allowed),
    )
