"""Rebase: move a crossdock image onto a new version of its base, and prove it still fits.

Per platform (the image's manifest records its base: ``org.opencontainers.image.base.name`` and
``.digest``, the base's platform manifest):

1. the old base's layers must be exactly the image's bottom layers (else nothing is changed);
2. the new base (same platform) is pulled and profiled (``baseprofile``): its Python must have the
   same minor version as the old one, since wheels, extension modules and bytecode are built for
   it; its glibc must be at least the highest ``GLIBC_x.y`` the image's own binaries need;
3. the new image is the new base's layers under the image's own layers, unchanged; its config
   gets the new base's diff_ids and history below the image's own, and environment values the
   image took from the old base (PATH's tail included) follow the new base;
4. every check runs again, as in a build: the new base verified, the whole image verified with
   the new base's profile, the target's output rules (the Lambda preflight for Lambda images);
5. the SBOM is carried over: the Python packages of the old image's SBOM, the new base's OS
   packages.

``check_bases`` answers the fleet question without pulling layers: which images' bases moved
(the base digest recorded in each manifest vs what the base's tag names now).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock.backends.basepass import base_profile
from crossdock.cache import BlobCache, CacheLayout
from crossdock.errors import BaseImageError, ConfigError, NotFoundError, VerificationError
from crossdock.image.artifact import BlobSource, ImageSet, PlatformImage
from crossdock.image.config import ImageConfig
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import Digest
from crossdock.image.document import reading
from crossdock.image.manifest import Index, Manifest
from crossdock.image.mediatypes import family_of
from crossdock.image.referrer import Referrer, make_referrer
from crossdock.platform import Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.registry.referrers import list_referrers
from crossdock.rootfs.baseprofile import BaseProfile, cached_base_profile
from crossdock.sbom import SBOM_ARTIFACT_TYPE, SBOM_PLATFORM_ANNOTATION, base_os_packages
from crossdock.sbom.document import image_name_of, python_packages_of, sbom_document
from crossdock.sbom.fetch import fetch_sbom
from crossdock.sources.registry import (
    Registries,
    pull_config,
    pull_layers,
    pull_platform_image,
    read_image_set,
)
from crossdock.targets import target_spec
from crossdock.verify import PlatformReport, verify_base, verify_image

__all__ = ["BASE_DIGEST", "BASE_NAME", "BaseCheck", "RebaseResult", "check_bases", "rebase"]

# OCI annotations.md: the base an image was built on (crossdock's builds set both).
BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
_CREATED = "org.opencontainers.image.created"
_LAMBDA_MARKER = "LAMBDA_TASK_ROOT"

ClientFor = Callable[[str], RegistryClient]


@dataclass(frozen=True)
class RebasedPlatform:
    platform: Platform
    old_digest: Digest
    image: PlatformImage
    old_base: Digest
    new_base: Digest
    python_version: str
    glibc_available: str
    glibc_required: str | None
    report: PlatformReport
    sbom_carried: bool  # the old image had an SBOM, carried over with the new base's packages


@dataclass(frozen=True)
class RebaseResult:
    image_set: ImageSet
    platforms: tuple[RebasedPlatform, ...]
    target: str | None  # whose output rules were applied (lambda for Lambda images)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": str(self.image_set.index.digest) if self.image_set.index else None,
            "target": self.target,
            "platforms": [
                {
                    "platform": str(p.platform),
                    "old_digest": str(p.old_digest),
                    "new_digest": str(p.image.digest),
                    "old_base": str(p.old_base),
                    "new_base": str(p.new_base),
                    "python_version": p.python_version,
                    "glibc": {"available": p.glibc_available, "required": p.glibc_required},
                    "sbom_carried": p.sbom_carried,
                    "verification": p.report.to_json(),
                }
                for p in self.platforms
            ],
        }


@dataclass(frozen=True)
class _Reader:
    """What rebase reads from: the registries (clients, mirrors) and the blob cache."""

    registries: Registries
    blobs: BlobCache

    def manifest(self, pull: Reference, digest: Digest) -> Manifest:
        found = self.registries.client(pull).get_manifest(pull.with_digest(digest))
        if not isinstance(found, Manifest):
            raise BaseImageError(f"{pull}@{digest} is an index, not an image manifest")
        return found

    def layers(self, pull: Reference, descriptors: Sequence[Descriptor]) -> tuple[BlobSource, ...]:
        return pull_layers(self.registries.client(pull), pull, descriptors, self.blobs)


def _children(reader: _Reader, pull: Reference, top: Manifest | Index) -> tuple[PlatformImage, ...]:
    """The image's platform images, manifests and configs only (attestations and other
    artifacts skipped)."""
    return read_image_set(reader.registries.client(pull), pull, top, None).images


def _recorded_base(image: Reference, manifest: Manifest) -> tuple[Reference, Digest]:
    name = manifest.annotations.get(BASE_NAME)
    digest = manifest.annotations.get(BASE_DIGEST)
    if not name or not digest:
        raise ConfigError(
            f"{image}@{manifest.digest} does not record its base ({BASE_NAME} and "
            f"{BASE_DIGEST} annotations)",
            hint="rebase works on images built by crossdock (OCI manifests record their base)",
        )
    return Reference.parse(name), Digest(digest)


# -- rebase ---------------------------------------------------------------------------------


def rebase(
    image: Reference,
    new_base: Reference,
    *,
    cache_dir: Path,
    mirrors: Mirrors | None = None,
    client_for: ClientFor = RegistryClient,
    allow: Sequence[str] = (),
    target: str | None = None,
) -> RebaseResult:
    """The images of ``image`` moved onto ``new_base``, verified; nothing is pushed. The
    result's layers are files of the blob cache in ``cache_dir``, held in use while this runs;
    a caller that writes or pushes them afterwards holds it too (``CacheLayout.in_use``, as
    ``crossdock rebase`` does), or a ``crossdock cache prune`` may remove them meanwhile."""
    with CacheLayout(cache_dir).in_use():
        with Registries(client_for, mirrors) as registries:
            reader = _Reader(registries, CacheLayout(cache_dir).blobs)
            pull, top = registries.top(image)
            children = _children(reader, pull, top)
            chosen = target or _inferred_target(top, children)
            new_pull, new_top = registries.top(new_base)
            rebased = tuple(
                _rebase_platform(
                    reader, (image, pull), child, (new_base, new_pull), new_top, cache_dir, allow
                )
                for child in children
            )
        index = None
        if isinstance(top, Index):
            family = family_of(rebased[0].image.manifest.media_type)
            index = Index.build(
                family.index,
                [p.image.manifest.descriptor(p.platform) for p in rebased],
                annotations=top.annotations,
            )
        image_set = ImageSet(tuple(p.image for p in rebased), index)
        if chosen is not None:
            target_spec(chosen).check_output(image_set, cache_dir=cache_dir)
        return RebaseResult(image_set, rebased, chosen)


def _inferred_target(top: Manifest | Index, children: Sequence[PlatformImage]) -> str | None:
    """Lambda images (single manifests on a base that sets LAMBDA_TASK_ROOT) keep Lambda's
    rules; others have no target-specific output rules to re-check."""
    if isinstance(top, Manifest) and all(_LAMBDA_MARKER in c.config.env for c in children):
        return "lambda"
    return None


def _rebase_platform(  # noqa: PLR0917 - private; one call site
    reader: _Reader,
    images: tuple[Reference, Reference],
    child: PlatformImage,
    new_bases: tuple[Reference, Reference],
    new_top: Manifest | Index,
    cache_dir: Path,
    allow: Sequence[str],
) -> RebasedPlatform:
    """``child`` (of ``images``: the image as named and as read, mirrors applied) moved onto
    ``new_top`` (of ``new_bases``, likewise)."""
    (image, pull), (new_base, new_pull) = images, new_bases
    platform = child.config.platform
    old_base_ref, old_base_digest = _recorded_base(image, child.manifest)
    old_pull = reader.registries.mirrors.apply(old_base_ref)
    old_base = reader.manifest(old_pull, old_base_digest)
    count = len(old_base.layers)
    if [d.digest for d in child.manifest.layers[:count]] != [d.digest for d in old_base.layers]:
        raise BaseImageError(
            f"{image}@{child.manifest.digest}: its bottom layers are not those of its recorded "
            f"base {old_base_ref}@{old_base_digest}; nothing was changed",
            hint="the image was not built on the base its annotations name",
        )
    old_base_config = pull_config(reader.registries.client(old_pull), old_pull, old_base)
    new = pull_platform_image(
        reader.registries.client(new_pull),
        new_pull,
        new_top,
        platform,
        reader.blobs,
        name=str(new_pull),
        hint="rebase onto a base that has every platform of the image",
    )
    own_descriptors = child.manifest.layers[count:]
    own = reader.layers(pull, own_descriptors)
    old_profile = cached_base_profile(
        PlatformImage(
            platform, old_base, old_base_config, reader.layers(old_pull, old_base.layers)
        ),
        cache_dir,
    )
    # Read once for its profile, its verification and its OS packages (backends.basepass).
    new_profile = base_profile(new, cache_dir)
    if new_profile.python != old_profile.python:
        raise BaseImageError(
            f"{new_base} has Python {new_profile.python_version} for {platform}, but "
            f"{image} was built for Python {old_profile.python_version}: its wheels, extension "
            "modules and bytecode are for that version; nothing was rebased",
            hint=f"rebase onto a base with Python {old_profile.python_version}, or rebuild "
            f"the service on {new_base}",
        )

    family = family_of(new.manifest.media_type)
    config = _rebased_config(child.config, old_base_config, new.config)
    layer_sources = (
        *new.layers,
        *(
            BlobSource(
                Descriptor(family.layer_gzip, b.descriptor.digest, b.descriptor.size),
                b.path,
                b.origin,
            )
            for b in own
        ),
    )
    report = _verify(
        cache_dir, new, new_profile, config, layer_sources, platform, allow, image, base=new_pull
    )
    annotations = dict(child.manifest.annotations)
    annotations[BASE_NAME] = str(new_base)
    annotations[BASE_DIGEST] = str(new.manifest.digest)
    manifest = Manifest.build(
        family.manifest,
        Descriptor(family.config, config.digest, len(config.raw)),
        [b.descriptor for b in layer_sources],
        annotations=annotations,
    )
    sbom = _carried_sbom(
        reader.registries.client(pull), pull, child, manifest, config, new, new_base, cache_dir
    )
    image_out = PlatformImage(
        platform, manifest, config, layer_sources, (sbom,) if sbom is not None else ()
    )
    return RebasedPlatform(
        platform=platform,
        old_digest=child.manifest.digest,
        image=image_out,
        old_base=old_base_digest,
        new_base=new.manifest.digest,
        python_version=new_profile.python_version,
        glibc_available=new_profile.glibc_version,
        glibc_required=report.glibc.required,
        report=report,
        sbom_carried=sbom is not None,
    )


def _rebased_config(
    image: ImageConfig, old_base: ImageConfig, new_base: ImageConfig
) -> ImageConfig:
    data: dict[str, Any] = json.loads(image.raw) if image.raw else dict(image.data)
    base_layers = len(old_base.diff_ids)
    base_history = len(old_base.data.get("history") or [])
    data["rootfs"] = {
        "type": "layers",
        "diff_ids": [str(d) for d in (*new_base.diff_ids, *image.diff_ids[base_layers:])],
    }
    data["history"] = [
        *(new_base.data.get("history") or []),
        *(image.data.get("history") or [])[base_history:],
    ]
    env = image.env
    old_env, new_env = old_base.env, new_base.env
    for key, old_value in old_env.items():
        value = env.get(key)
        if value is None:
            continue
        if value == old_value:
            if key in new_env:
                env[key] = new_env[key]
            else:
                env.pop(key)
        elif key == "PATH" and value.endswith(old_value) and "PATH" in new_env:
            # crossdock prepends its bin folder to the base's PATH.
            env[key] = value[: len(value) - len(old_value)] + new_env["PATH"]
    for key, new_value in new_env.items():
        if key not in old_env and key not in env:
            env[key] = new_value
    runtime = dict(data.get("config") or {})
    runtime["Env"] = [f"{k}={v}" for k, v in env.items()]
    data["config"] = runtime
    return ImageConfig.from_data(data)


def _verify(  # noqa: PLR0917 - private; one call site
    cache_dir: Path,
    new: PlatformImage,
    profile: BaseProfile,
    config: ImageConfig,
    layers: Sequence[BlobSource],
    platform: Platform,
    allow: Sequence[str],
    image: Reference,
    *,
    base: Reference,
) -> PlatformReport:
    """Verify ``new`` (the new base, read from ``base``) and the rebased image on it."""
    # The base verified once per digest, platform and allow rules (as the native backend does).
    failed = verify_base(
        new,
        profile=profile,
        platform=platform,
        allow=allow,
        image_name=f"base {base} ({platform})",
        cache_dir=cache_dir,
    )
    if failed is not None:
        raise VerificationError(
            f"the new base {base} for {platform} failed verification; nothing was rebased",
            report=failed,
            hint="pick another base, or --allow PATTERN for a known exception in the base",
        )
    report = verify_image(
        config,
        [b.path for b in layers],
        layer_digests=[b.descriptor.digest for b in layers],
        profile=profile,
        allow=allow,
        first_layer=len(new.layers),
        declared_platform=platform,
        image_name=f"{image} rebased ({platform})",
        cache_dir=cache_dir,
    )
    required = report.glibc.required
    if required is not None and _version(required) > profile.glibc:
        raise BaseImageError(
            f"{base} has glibc {profile.glibc_version} for {platform}, older than "
            f"the glibc {required} that {report.glibc.required_by} in {image} needs; nothing "
            "was rebased",
            hint="rebase onto a base with a newer glibc, or rebuild the service on this base "
            "(crossdock then picks wheels for its glibc)",
        )
    if not report.passed:
        raise VerificationError(
            f"{image} rebased onto {base} failed verification for {platform}; nothing was pushed",
            report=report,
            hint="see the failures above; --allow PATTERN accepts a known exception",
        )
    return report


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _carried_sbom(  # noqa: PLR0917 - private; one call site
    client: RegistryClient,
    pull: Reference,
    child: PlatformImage,
    manifest: Manifest,
    config: ImageConfig,
    new: PlatformImage,
    new_base: Reference,
    cache_dir: Path,
) -> Referrer | None:
    """The old image's SBOM (``child``, read from ``pull``) with the new base's OS packages
    (None when it had none)."""
    platform = new.platform
    found = list_referrers(client, pull, child.manifest.digest, SBOM_ARTIFACT_TYPE)
    if not found:
        return None
    artifact = client.get_manifest(pull.with_digest(found[-1].digest))
    if not isinstance(artifact, Manifest) or not artifact.layers:
        return None
    old_document = fetch_sbom(client, pull, artifact.layers[-1], platform)
    created = str(config.data.get("created") or "1970-01-01T00:00:00Z")
    with reading(f"{pull}: the {platform} image's SBOM {artifact.layers[-1].digest}"):
        image_name, python = image_name_of(old_document), python_packages_of(old_document)
    document = sbom_document(
        image_name=image_name,
        manifest_digest=manifest.digest,
        platform=platform,
        created=datetime.datetime.fromisoformat(created.replace("Z", "+00:00")),
        python=python,
        os_packages=base_os_packages(new, cache_dir),
        base_name=str(new_base),
        base_digest=new.manifest.digest,
    )
    return make_referrer(
        manifest.descriptor(),
        SBOM_ARTIFACT_TYPE,
        SBOM_ARTIFACT_TYPE,
        document,
        {_CREATED: created, SBOM_PLATFORM_ANNOTATION: str(platform)},
    )


# -- rebase --check -------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseCheck:
    image: str
    platform: str
    base: str | None
    recorded: str | None
    current: str | None
    moved: bool | None  # None: the image records no base, or its base tag is gone

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "platform": self.platform,
            "base": self.base,
            "recorded": self.recorded,
            "current": self.current,
            "moved": self.moved,
        }


def check_bases(
    images: Sequence[Reference],
    *,
    mirrors: Mirrors | None = None,
    client_for: ClientFor = RegistryClient,
) -> list[BaseCheck]:
    """For each platform of each image: has the tag of its recorded base moved?"""
    # No layer is pulled: the blob cache is never written.
    reader = _Reader(Registries(client_for, mirrors), BlobCache(Path("/nonexistent")))
    checks: list[BaseCheck] = []
    with reader.registries:
        for image in images:
            pull, top = reader.registries.top(image)
            checks.extend(
                _check_one(reader, image, child) for child in _children(reader, pull, top)
            )
    return checks


def _check_one(reader: _Reader, image: Reference, child: PlatformImage) -> BaseCheck:
    platform = child.config.platform
    name = child.manifest.annotations.get(BASE_NAME)
    recorded = child.manifest.annotations.get(BASE_DIGEST)
    if not name or not recorded:
        return BaseCheck(str(image), str(platform), name, recorded, None, None)
    try:
        _, base_top = reader.registries.top(Reference.parse(name))
    except NotFoundError:
        return BaseCheck(str(image), str(platform), name, recorded, None, None)
    if isinstance(base_top, Index):
        found = base_top.find(platform)
        current = str(found.digest) if found is not None else None
    else:
        current = str(base_top.digest)
    moved = None if current is None else current != recorded
    return BaseCheck(str(image), str(platform), name, recorded, current, moved)
