"""Pushing a build's images to a repository, completely or not at all.

Order (what makes it all-or-nothing): every layer and config blob first (concurrently, bounded),
then every single-platform manifest *by digest*, then the index by digest, and only then the
tags, each to the digest it names. A failure anywhere before the tags raises before any tag is
written, so no tag ever points at something incomplete; blobs and untagged manifests left behind
are invisible and collected by the registry. (Tags are written one by one: if the registry
fails half-way through the tags, the tags written so far point at complete images, and the
error says which tags were set and which still point where they did.)

Re-pushing an unchanged image uploads nothing (each blob is HEADed first) and rewrites no tag
that already points at its digest, which is also what lets a re-push succeed on an immutable
repository (ECR); moving an existing tag there raises ``ImmutableTagError``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from crossdock.errors import ConfigError, RegistryError
from crossdock.image.artifact import BlobSource, ImageSet
from crossdock.image.digest import Digest, sha256_of
from crossdock.registry.reference import Reference
from crossdock.registry.referrers import attach_referrer

if TYPE_CHECKING:
    from crossdock.registry.access import RegistryAccess, UploadOutcome

__all__ = ["DEFAULT_CONCURRENCY", "PushEvent", "PushReport", "push_image_set"]

_log = logging.getLogger(__name__)

# Concurrent blob transfers: enough to hide latency, few enough not to trip rate limits.
DEFAULT_CONCURRENCY = 4

EventKind = Literal["blob", "bytes", "manifest", "index", "referrer", "tag"]
EventOutcome = Literal["uploaded", "mounted", "present", "pushed", "skipped", "sent"]


@dataclass(frozen=True)
class PushEvent:
    """One finished step of a push (given to ``on_progress``, possibly from worker threads);
    ``bytes`` events report ``size`` more bytes of blob ``name`` sent, while it uploads."""

    kind: EventKind
    name: str
    outcome: EventOutcome
    size: int = 0


@dataclass
class PushReport:
    """What a push did: blob counts and bytes, what was pushed by digest, and the tags."""

    repository: Reference
    blobs_uploaded: int = 0
    bytes_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0
    manifests: list[Digest] = field(default_factory=list)
    index: Digest | None = None
    referrers: list[Digest] = field(default_factory=list)  # artifacts attached (SBOMs)
    tags: dict[str, Digest] = field(default_factory=dict)
    tags_unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        moved = len(self.tags) - len(self.tags_unchanged)
        return (
            f"{self.repository.registry}/{self.repository.repository}: "
            f"{self.blobs_uploaded} blob(s) uploaded ({self.bytes_uploaded} bytes), "
            f"{self.blobs_mounted} mounted, {self.blobs_present} already there; "
            f"{len(self.manifests)} manifest(s)"
            + (f" + index {self.index}" if self.index else "")
            + (f", {len(self.referrers)} referrer(s)" if self.referrers else "")
            + f"; {moved} tag(s) set, {len(self.tags_unchanged)} unchanged"
        )


def push_image_set(
    client: RegistryAccess,
    image_set: ImageSet,
    repository: Reference,
    tags: Mapping[str, Digest],
    *,
    on_progress: Callable[[PushEvent], None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> PushReport:
    """Push every blob, manifest and the index of ``image_set`` to ``repository``, then point
    each tag in ``tags`` at its digest (which must be one of the set's manifests or its index)."""
    _check_tag_targets(image_set, tags)
    target = Reference(repository.registry, repository.repository)
    report = PushReport(repository=target)
    lock = threading.Lock()

    def progress(event: PushEvent) -> None:
        with lock:
            if event.kind == "blob":
                if event.outcome == "uploaded":
                    report.blobs_uploaded += 1
                    report.bytes_uploaded += event.size
                elif event.outcome == "mounted":
                    report.blobs_mounted += 1
                else:
                    report.blobs_present += 1
        if on_progress is not None:
            on_progress(event)

    _push_blobs(client, image_set, target, progress, concurrency)

    for image in image_set.images:
        digest = image.manifest.digest
        outcome = _push_by_digest(
            client, target, image.manifest.raw, image.manifest.media_type, digest
        )
        report.manifests.append(digest)
        progress(PushEvent("manifest", str(digest), outcome, len(image.manifest.raw)))
    if image_set.index is not None:
        index = image_set.index
        outcome = _push_by_digest(client, target, index.raw, index.media_type, index.digest)
        report.index = index.digest
        progress(PushEvent("index", str(index.digest), outcome, len(index.raw)))
    # Referrers (SBOMs) beside their images, never inside the index: after their subjects
    # exist, before any tag moves.
    for image in image_set.images:
        for referrer in image.referrers:
            via = attach_referrer(client, target, referrer)
            report.referrers.append(referrer.digest)
            progress(PushEvent("referrer", f"{referrer.digest} ({via})", "pushed"))

    raw_by_digest = _documents(image_set)
    for tag, digest in tags.items():
        raw, media_type = raw_by_digest[digest]
        try:
            current = client.head_manifest(target.with_tag(tag))
            if current is not None and current.digest == digest:
                report.tags_unchanged.append(tag)
                progress(PushEvent("tag", tag, "skipped"))
            else:
                client.put_manifest(target, raw, media_type, tag)
                progress(PushEvent("tag", tag, "pushed"))
        except RegistryError as err:
            raise _tags_left_half_way(err, list(tags), list(report.tags)) from err
        report.tags[tag] = digest
    _log.info("pushed %s", report.summary())
    return report


def _tags_left_half_way(err: RegistryError, tags: list[str], done: list[str]) -> RegistryError:
    """``err`` again (same class, so the same exit code), saying which tags the failure left
    set: every image and the index were complete by then, so those tags are right; the rest did
    not move."""
    pending = ", ".join(tags[len(done) :])
    state = (
        f"{len(done)} of {len(tags)} tags were set ({', '.join(done)})"
        if done
        else f"none of the {len(tags)} tags was set"
    )
    return type(err)(
        f"{err.message}; {state}, {pending} still point where they did",
        hint=err.hint or "push again: what is already in the registry is not uploaded twice",
    )


def _check_tag_targets(image_set: ImageSet, tags: Mapping[str, Digest]) -> None:
    known = _documents(image_set)
    for tag, digest in tags.items():
        if digest not in known:
            raise ConfigError(
                f"tag {tag!r} names {digest}, which is neither a manifest nor the index of "
                "this build",
                hint="tags may only point at what the push itself writes",
            )
    for image in image_set.images:
        have = {blob.descriptor.digest for blob in image.layers}
        missing = [d.digest for d in image.manifest.layers if d.digest not in have]
        if missing or image.config.digest != image.manifest.config.digest:
            raise ConfigError(
                f"the {image.platform} image is inconsistent: its manifest references "
                f"{'layers ' + ', '.join(map(str, missing)) if missing else 'a config'} "
                "that the build did not provide",
                hint="this is a bug in the build step; please report it",
            )


def _documents(image_set: ImageSet) -> dict[Digest, tuple[bytes, str]]:
    """Manifest and index bytes by digest: what a tag can point at."""
    out = {
        image.manifest.digest: (image.manifest.raw, image.manifest.media_type)
        for image in image_set.images
    }
    if image_set.index is not None:
        out[image_set.index.digest] = (image_set.index.raw, image_set.index.media_type)
    return out


def _push_blobs(
    client: RegistryAccess,
    image_set: ImageSet,
    target: Reference,
    progress: Callable[[PushEvent], None],
    concurrency: int,
) -> None:
    def push_layer(blob: BlobSource) -> None:
        digest = str(blob.descriptor.digest)

        def sent(amount: int) -> None:
            progress(PushEvent("bytes", digest, "sent", amount))

        outcome = client.upload_blob(
            target,
            blob.descriptor,
            blob.path,
            mount_from=_mount_source(blob, client.registry),
            on_bytes=sent,
        )
        progress(PushEvent("blob", str(blob.descriptor.digest), outcome, blob.descriptor.size))

    def push_config(raw: bytes) -> None:
        outcome: UploadOutcome = client.upload_blob_bytes(target, raw)
        progress(PushEvent("blob", str(sha256_of(raw)), outcome, len(raw)))

    configs = {image.config.digest: image.config.raw for image in image_set.images}
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="push") as pool:
        futures: list[Future[None]] = [pool.submit(push_layer, blob) for blob in image_set.blobs()]
        futures += [pool.submit(push_config, raw) for raw in configs.values()]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                # Stop what has not started; what is running finishes, nothing gets tagged.
                for other in futures:
                    other.cancel()
                raise error


def _mount_source(blob: BlobSource, registry: str) -> str | None:
    """The repository to mount ``blob`` from, when it came from this same registry."""
    if not blob.origin:
        return None
    host, _, repository = blob.origin.partition("/")
    return repository if host == registry and repository else None


def _push_by_digest(
    client: RegistryAccess, target: Reference, raw: bytes, media_type: str, digest: Digest
) -> EventOutcome:
    if client.head_manifest(target.with_digest(digest)) is not None:
        return "present"
    client.put_manifest(target, raw, media_type, digest)
    return "pushed"
