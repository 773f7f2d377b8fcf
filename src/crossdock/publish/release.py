"""A release: one build's images, the tags they get, and the push that writes them.

Two steps, so ``--dry-run`` is the first one alone:

1. ``plan_release`` (no I/O): which images go where and which tag points at which digest. For
   an environment (``--env dev|prod``) the tags are the seed's scheme (``plan_tags``); for an
   explicit ``REPO:TAG`` they are ``TAG`` (the index, or the production architecture's image)
   and ``TAG-ARCH`` per platform. The production environment publishes the production
   architecture only (the seed: "Production deployments always push arm64 images"), so a
   build without it is refused, and other platforms are left out of a prod release.
2. ``run_release``: on ECR, check that the repository exists (creating it only when asked: ECR
   does not create repositories on push) and, when its tags are immutable, refuse before
   pushing anything if a tag would move; then ``push_image_set`` (blobs, manifests by digest,
   the index, tags last).

A dirty git tree is a note in every release, and an error when ``refuse_dirty`` is set: the SHA
tags would name a commit that is not what was built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from crossdock.errors import ConfigError
from crossdock.image.artifact import ImageSet
from crossdock.image.digest import Digest
from crossdock.platform import ARM64, Platform
from crossdock.publish.git import GitState, git_state
from crossdock.publish.tags import (
    DEFAULT_TEMPLATES,
    TagAssignment,
    format_timestamp,
    plan_tags,
    tag_digests,
)
from crossdock.registry.ecr import EcrRegistry, ensure_repository, parse_ecr_host
from crossdock.registry.reference import Reference
from crossdock.sinks.registry import PushEvent, PushReport, push_image_set

if TYPE_CHECKING:
    from crossdock.registry.access import RegistryAccess

__all__ = [
    "PRODUCTION_ENV",
    "PlannedTag",
    "ReleasePlan",
    "ReleaseRequest",
    "ReleaseResult",
    "environment_platforms",
    "plan_release",
    "release_git_state",
    "release_tags",
    "run_release",
]

# The environment that runs on the production architecture only (the seed's "prod").
PRODUCTION_ENV = "prod"
# Templates for an explicit REPO:TAG: the tag itself and one per architecture ({env} is TAG).
EXPLICIT_TEMPLATES: tuple[str, ...] = ("{env}", "{env}-{arch}")


@dataclass(frozen=True)
class ReleaseRequest:
    """Where a build goes and how its tags are named."""

    repository: Reference  # registry and repository; its tag is ignored (see ``tag``)
    env: str | None  # the seed's scheme for this environment; None: explicit ``tag``
    tag: str = "latest"
    production_arch: Platform = ARM64
    single_manifests: bool = False  # the target refuses indexes (Lambda)
    git: GitState | None = None  # required with ``env`` (the SHA tags)
    timestamp: datetime | str | None = None  # None: now
    refuse_dirty: bool = False
    templates: tuple[str, ...] = DEFAULT_TEMPLATES


@dataclass(frozen=True)
class PlannedTag:
    tag: str
    digest: Digest
    points_to: str  # "index" or the platform (linux/arm64/v8) of a single manifest


@dataclass(frozen=True)
class ReleasePlan:
    """Everything a push will do, decided before it starts (what ``--dry-run`` prints)."""

    repository: Reference
    env: str | None
    image_set: ImageSet
    tags: tuple[PlannedTag, ...]
    git: GitState | None
    notes: tuple[str, ...] = ()

    @property
    def tag_digests(self) -> dict[str, Digest]:
        return {t.tag: t.digest for t in self.tags}

    @property
    def where(self) -> str:
        return f"{self.repository.registry}/{self.repository.repository}"

    def blob_totals(self) -> tuple[int, int]:
        """(blobs, bytes) the push may transfer at most: layers and configs."""
        layers = list(self.image_set.blobs())
        configs = {image.config.digest: len(image.config.raw) for image in self.image_set.images}
        return (
            len(layers) + len(configs),
            sum(b.descriptor.size for b in layers) + sum(configs.values()),
        )

    def to_json(self) -> dict[str, Any]:
        blobs, size = self.blob_totals()
        return {
            "repository": self.where,
            "env": self.env,
            "git": None if self.git is None else {"sha": self.git.sha, "dirty": self.git.dirty},
            "index": str(self.image_set.index.digest) if self.image_set.index else None,
            "manifests": {str(i.platform): str(i.digest) for i in self.image_set.images},
            "tags": [
                {"tag": t.tag, "digest": str(t.digest), "points_to": t.points_to} for t in self.tags
            ],
            "blobs": blobs,
            "bytes": size,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ReleaseResult:
    """A plan and what its push did (``report`` is None for a dry run)."""

    plan: ReleasePlan
    report: PushReport | None
    immutable: bool | None = None  # known for ECR only
    events: tuple[PushEvent, ...] = field(default=(), repr=False)

    def tag_status(self, tag: str) -> Literal["planned", "pushed", "unchanged"]:
        if self.report is None:
            return "planned"
        return "unchanged" if tag in self.report.tags_unchanged else "pushed"

    def to_json(self) -> dict[str, Any]:
        out = self.plan.to_json()
        out["dry_run"] = self.report is None
        out["immutable"] = self.immutable
        for item in out["tags"]:
            item["status"] = self.tag_status(item["tag"])
        if self.report is not None:
            out["pushed"] = {
                "blobs_uploaded": self.report.blobs_uploaded,
                "bytes_uploaded": self.report.bytes_uploaded,
                "blobs_mounted": self.report.blobs_mounted,
                "blobs_present": self.report.blobs_present,
                "tags_set": len(self.report.tags) - len(self.report.tags_unchanged),
                "tags_unchanged": len(self.report.tags_unchanged),
            }
        return out


def environment_platforms(
    env: str | None, platforms: Sequence[Platform], production_arch: Platform
) -> tuple[Platform, ...]:
    """The platforms a release to ``env`` publishes: the production architecture alone for
    prod (refused when it is not built), every built platform otherwise."""
    if env != PRODUCTION_ENV:
        return tuple(platforms)
    production = [p for p in platforms if p.short == production_arch.short]
    if not production:
        built = ", ".join(str(p) for p in platforms) or "nothing"
        raise ConfigError(
            f"environment {PRODUCTION_ENV} always runs {production_arch.short}, but this build "
            f"has {built}",
            hint=f"build with --platform {production_arch.short} (or leave --platform out)",
        )
    return (production[0],)


def release_git_state(
    project: Path, *, env: str | None, sha_override: str | None, refuse_dirty: bool
) -> GitState | None:
    """The commit for the SHA tags of an environment release (None without ``env``), refusing
    a dirty tree when ``refuse_dirty`` is set. Call it before building: it fails fast."""
    if env is None:
        return None
    state = git_state(project, sha_override=sha_override)
    _check_dirty(state, refuse_dirty)
    return state


def plan_release(image_set: ImageSet, request: ReleaseRequest) -> ReleasePlan:
    """Decide the images and tags of a release (no I/O)."""
    notes: list[str] = []
    built = [image.platform for image in image_set.images]
    published = environment_platforms(request.env, built, request.production_arch)
    if len(published) < len(built):
        left_out = ", ".join(str(p) for p in built if p not in published)
        notes.append(
            f"{PRODUCTION_ENV} publishes {request.production_arch.short} only; "
            f"not pushing {left_out}"
        )
        image_set = ImageSet(tuple(image_set.image_for(p) for p in published), None)
    # Without an index (Lambda builds, or prod's one platform), tags can only name manifests.
    single = request.single_manifests or image_set.index is None
    assignments = release_tags(request, published, single_manifests=single, notes=notes)
    digests = tag_digests(assignments, image_set)
    tags = tuple(
        PlannedTag(a.tag, digests[a.tag], "index" if a.points_to == "index" else str(a.points_to))
        for a in assignments
    )
    repository = Reference(request.repository.registry, request.repository.repository)
    return ReleasePlan(repository, request.env, image_set, tags, request.git, tuple(notes))


def release_tags(
    request: ReleaseRequest,
    published: Sequence[Platform],
    *,
    single_manifests: bool,
    notes: list[str],
) -> list[TagAssignment]:
    """The tags of a release of ``published`` and what each names (no digests: a dry run of a
    build that has none yet uses this alone); notes about the git tree go to ``notes``."""
    timestamp = request.timestamp or datetime.now(UTC)
    stamp = timestamp if isinstance(timestamp, str) else format_timestamp(timestamp)
    if request.env is not None:
        if request.git is None:
            raise ConfigError(
                f"a release to {request.env} needs the commit's SHA for its tags",
                hint="run from the git checkout, or pass --git-sha",
            )
        _check_dirty(request.git, request.refuse_dirty)
        if request.git.dirty:
            notes.append(
                f"the git tree is dirty: tags {request.git.sha}* name commit "
                f"{request.git.sha}, which is not exactly what was built"
            )
        elif request.git.dirty is None:
            notes.append(f"commit {request.git.sha} given with --git-sha; tree state not checked")
        assignments = plan_tags(
            request.env,
            stamp,
            request.git.sha,
            published,
            request.production_arch,
            single_manifests=single_manifests,
            templates=request.templates,
        )
    else:
        # Explicit tag: TAG belongs to the production architecture when it was built, else
        # to the first platform (an amd64-only test push still gets its plain TAG).
        owner = next(
            (p for p in published if p.short == request.production_arch.short), published[0]
        )
        assignments = plan_tags(
            request.tag,
            stamp,
            request.git.sha if request.git else "0000000",
            published,
            owner,
            single_manifests=single_manifests,
            templates=EXPLICIT_TEMPLATES,
        )
    return assignments


def run_release(
    plan: ReleasePlan,
    *,
    create_repository: bool = False,
    client: RegistryAccess | None = None,
    ecr: EcrRegistry | None = None,
    on_progress: Callable[[PushEvent], None] | None = None,
) -> ReleaseResult:
    """Push ``plan``: ECR repository check first, then all blobs, manifests and tags.

    ``client`` defaults to a client for the plan's registry; ``ecr`` marks it as ECR when its
    host name does not say so (tests against moto, private endpoints)."""
    ecr = ecr or (client.ecr if client is not None else None)
    ecr = ecr or parse_ecr_host(plan.repository.registry)
    immutable: bool | None = None
    if ecr is not None:
        immutable = ensure_repository(ecr, plan.repository.repository, create=create_repository)
    owned = client is None
    active = client if client is not None else _full_client(plan.repository.registry, ecr)
    events: list[PushEvent] = []

    def progress(event: PushEvent) -> None:
        if event.kind != "bytes":  # the record keeps finished steps, not transfer ticks
            events.append(event)
        if on_progress is not None:
            on_progress(event)

    try:
        if immutable:
            _refuse_moving_tags(active, plan)
        report = push_image_set(
            active, plan.image_set, plan.repository, plan.tag_digests, on_progress=progress
        )
    finally:
        if owned:
            active.close()
    return ReleaseResult(plan, report, immutable, tuple(events))


def _full_client(registry: str, ecr: EcrRegistry | None) -> RegistryAccess:
    # Imported when used: a release read through the light client (a build answered from its
    # record, crossdock.registry.light) does not load the HTTP stack.
    from crossdock.registry.client import RegistryClient

    return RegistryClient(registry, ecr=ecr)


def _refuse_moving_tags(client: RegistryAccess, plan: ReleasePlan) -> None:
    """On an immutable repository, a tag that exists at another digest cannot be written:
    say so for all of them before anything is pushed."""
    from crossdock.registry.responses import ImmutableTagError  # (ECR only: imported then)

    moving = []
    for planned in plan.tags:
        current = client.head_manifest(plan.repository.with_tag(planned.tag))
        if current is not None and current.digest != planned.digest:
            moving.append(f"{planned.tag} (now {current.digest}, would be {planned.digest})")
    if moving:
        raise ImmutableTagError(
            f"{plan.where} has immutable tags, and this release would move "
            f"{len(moving)} of them; nothing was pushed:\n  " + "\n  ".join(moving),
            hint="the -latest tags move on every release: make the repository's tags mutable "
            "(aws ecr put-image-tag-mutability --image-tag-mutability MUTABLE), or push "
            "to a repository that allows it",
        )


def _check_dirty(state: GitState, refuse_dirty: bool) -> None:
    if state.dirty and refuse_dirty:
        raise ConfigError(
            f"the git tree has uncommitted changes, and refuse-dirty is set: tags "
            f"{state.sha}* would name a commit that is not what was built",
            hint="commit or stash the changes, or set refuse-dirty = false",
        )
