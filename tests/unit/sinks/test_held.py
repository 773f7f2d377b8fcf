"""A push that the registry already holds, shown by a few reads (crossdock.sinks.held, issue
14) against the in-process registry: which requests it makes (each tag, each manifest no tag
names, each referrer and where it is listed; never a blob, never a write), that it reports what
the full push reports, and that each change at the registry (a tag deleted or moved, a manifest
or a referrer deleted, a referrer no longer listed) is something the push writes, which the full
push then writes back. The same against distribution, through the CLI:
tests/integration/test_build_caches.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from crossdock.image.artifact import ImageSet
from crossdock.image.digest import Digest
from crossdock.image.manifest import Index
from crossdock.image.mediatypes import MediaType
from crossdock.image.referrer import fallback_tag
from crossdock.registry.client import RegistryClient
from crossdock.registry.light import DeclinedError, LightClient
from crossdock.registry.reference import Reference
from crossdock.sinks import PushEvent, PushReport, push_image_set
from crossdock.sinks.held import HeldReads
from tests.support import images
from tests.support.registry import InProcessRegistry

REPOSITORY = "team/api"
WRITES = ("PUT", "POST", "PATCH", "DELETE")


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


def _tags(image_set: ImageSet) -> dict[str, Digest]:
    """What ``crossdock build --push REPO:v1`` tags: the index, and each platform's image."""
    assert image_set.index is not None
    tags = {"v1": image_set.index.digest}
    tags.update({f"v1-{i.platform.architecture}": i.manifest.digest for i in image_set.images})
    return tags


def _repository(registry: InProcessRegistry) -> Reference:
    return Reference(registry.host, REPOSITORY)


def _full_push(
    registry: InProcessRegistry, image_set: ImageSet, tags: Mapping[str, Digest]
) -> tuple[PushReport, list[PushEvent]]:
    events: list[PushEvent] = []
    with RegistryClient(registry.host) as client:
        report = push_image_set(
            client, image_set, _repository(registry), tags, on_progress=events.append
        )
    return report, events


def _held_push(
    registry: InProcessRegistry, image_set: ImageSet, tags: Mapping[str, Digest]
) -> tuple[PushReport, list[PushEvent]]:
    """The push over the reads made ahead, through the light client (which declines writes)."""
    events: list[PushEvent] = []
    with LightClient(registry.host) as client:
        held = HeldReads.read(client, image_set, _repository(registry), tags)
        report = push_image_set(
            held, image_set, _repository(registry), tags, on_progress=events.append
        )
    return report, events


def _requests(registry: InProcessRegistry, since: int) -> list[str]:
    return sorted(f"{s.method} {s.path.split('?')[0]}" for s in registry.requests[since:])


def _image_set(tmp_path: Path) -> ImageSet:
    return images.with_sboms(images.image_set(tmp_path / "blobs", shared=images.app_files()))


def test_a_held_push_reads_each_tag_referrer_and_listing_once_and_no_blob(registry, tmp_path):
    image_set = _image_set(tmp_path)
    tags = _tags(image_set)
    full, _ = _full_push(registry, image_set, tags)
    assert full.blobs_uploaded > 0

    read = len(registry.requests)
    report, events = _held_push(registry, image_set, tags)
    name = f"/v2/{REPOSITORY}"
    referrers = [r for image in image_set.images for r in image.referrers]
    subjects = [image.manifest.digest for image in image_set.images]
    assert _requests(registry, read) == sorted(
        [f"HEAD {name}/manifests/{tag}" for tag in tags]
        + [f"HEAD {name}/manifests/{r.digest}" for r in referrers]
        + [f"GET {name}/referrers/{s}" for s in subjects]
        + [f"GET {name}/manifests/{fallback_tag(s)}" for s in subjects]
    )
    # What the full push reports for the same registry state, every blob present.
    again, again_events = _full_push(registry, image_set, tags)
    assert dataclasses.asdict(report) == dataclasses.asdict(again)
    assert report.blobs_uploaded == report.blobs_mounted == 0
    assert sorted(report.tags_unchanged) == sorted(tags)
    assert sorted(events, key=repr) == sorted(again_events, key=repr)


def test_a_manifest_no_tag_names_is_asked_for_by_digest(registry, tmp_path):
    """Only the index tagged: an index shows nothing of its manifests, so each is asked for."""
    image_set = _image_set(tmp_path)
    assert image_set.index is not None
    tags = {"v1": image_set.index.digest}
    _full_push(registry, image_set, tags)
    read = len(registry.requests)
    _held_push(registry, image_set, tags)
    heads = [r for r in _requests(registry, read) if r.startswith("HEAD")]
    for image in image_set.images:
        assert f"HEAD /v2/{REPOSITORY}/manifests/{image.manifest.digest}" in heads
    assert not [r for r in _requests(registry, read) if "/blobs/" in r]

    # One of them deleted (the index and its tag left): something to write.
    arm64 = image_set.images[0].manifest.digest
    del registry.manifests[(REPOSITORY, str(arm64))]
    with pytest.raises(DeclinedError, match=str(arm64)):
        _held_push(registry, image_set, tags)


def _delete_manifest(registry: InProcessRegistry, digest: Digest) -> None:
    """As distribution's DELETE of a manifest by digest: the manifest and every tag on it."""
    raw, _ = registry.manifests[(REPOSITORY, str(digest))]
    for key in [k for k, (stored, _) in registry.manifests.items() if stored == raw]:
        del registry.manifests[key]


def _drifts(
    registry: InProcessRegistry, image_set: ImageSet
) -> list[tuple[str, Callable[[], None]]]:
    arm64, amd64 = (image.manifest for image in image_set.images)
    sbom = image_set.images[1].referrers[0]

    def tag_deleted() -> None:
        del registry.manifests[(REPOSITORY, "v1-amd64")]

    def tag_moved() -> None:  # to another manifest the repository holds
        registry.manifests[(REPOSITORY, "v1")] = (arm64.raw, arm64.media_type)

    def manifest_deleted() -> None:
        _delete_manifest(registry, amd64.digest)

    def index_deleted() -> None:
        assert image_set.index is not None
        _delete_manifest(registry, image_set.index.digest)

    def referrer_deleted() -> None:
        _delete_manifest(registry, sbom.digest)

    def referrer_unlisted() -> None:
        # The fallback tag's index rewritten without it (another pusher's read-modify-write).
        emptied = Index.build(MediaType.OCI_INDEX, [])
        key = (REPOSITORY, fallback_tag(sbom.subject.digest))
        registry.manifests[key] = (emptied.raw, emptied.media_type)

    return [
        (change.__name__, change)
        for change in (
            tag_deleted,
            tag_moved,
            manifest_deleted,
            index_deleted,
            referrer_deleted,
            referrer_unlisted,
        )
    ]


def test_each_change_at_the_registry_is_something_to_write_and_the_full_push_repairs_it(
    registry, tmp_path
):
    image_set = _image_set(tmp_path)
    tags = _tags(image_set)
    _full_push(registry, image_set, tags)
    for what, change in _drifts(registry, image_set):
        change()
        read = len(registry.requests)
        with pytest.raises(DeclinedError, match="would be written"):
            _held_push(registry, image_set, tags)
        assert [r for r in _requests(registry, read) if r.split()[0] in WRITES] == [], what
        read = len(registry.requests)
        _full_push(registry, image_set, tags)
        assert [r for r in _requests(registry, read) if r.startswith("PUT")], what
        # Held again: found with no write.
        report, _ = _held_push(registry, image_set, tags)
        assert sorted(report.tags_unchanged) == sorted(tags), what
