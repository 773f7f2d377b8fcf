"""The push path (crossdock.sinks.registry) against an in-process OCI registry on loopback
(tests/support/registry.py: the distribution API over real HTTP, storage in memory): every blob,
then the manifests by digest, then the index by digest, the tags last; a second push of the same
images uploads nothing and moves no tag."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossdock.errors import ConfigError
from crossdock.image.artifact import ImageSet
from crossdock.image.digest import sha256_of
from crossdock.platform import AMD64, ARM64
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Reference
from crossdock.sinks import PushEvent, push_image_set
from tests.support import images
from tests.support.registry import InProcessRegistry

REPOSITORY = "team/api"


def _push(registry: InProcessRegistry, image_set: ImageSet, events: list[PushEvent] | None = None):
    with RegistryClient(registry.host, environ={}) as client:
        return push_image_set(
            client,
            image_set,
            Reference.parse(f"{registry.host}/{REPOSITORY}"),
            images.six_tags(image_set),
            on_progress=None if events is None else events.append,
        )


def _blob_count(image_set: ImageSet) -> int:
    """Layers (once each) and configs."""
    layers = {blob.descriptor.digest for blob in image_set.blobs()}
    return len(layers | {image.config.digest for image in image_set.images})


def _manifest_puts(registry: InProcessRegistry) -> list[str]:
    """The reference of every manifest PUT, in order."""
    return [
        seen.path.rsplit("/manifests/", 1)[1]
        for seen in registry.requests
        if seen.method == "PUT" and "/manifests/" in seen.path
    ]


def test_a_push_stores_blobs_then_manifests_by_digest_then_the_index_then_the_tags(
    registry, tmp_path
):
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    assert image_set.index is not None
    tags = images.six_tags(image_set)
    report = _push(registry, image_set)

    # What the registry holds: every blob with its bytes, the documents as the exact bytes built.
    for blob in image_set.blobs():
        assert registry.blobs[str(blob.descriptor.digest)] == blob.path.read_bytes()
    for image in image_set.images:
        assert registry.blobs[str(image.config.digest)] == image.config.raw
        stored, _ = registry.manifests[(REPOSITORY, str(image.manifest.digest))]
        assert stored == image.manifest.raw
    stored, media_type = registry.manifests[(REPOSITORY, str(image_set.index.digest))]
    assert (stored, media_type) == (image_set.index.raw, image_set.index.media_type)
    for tag, digest in tags.items():
        assert sha256_of(registry.manifests[(REPOSITORY, tag)][0]) == digest

    # The order: each manifest by digest, the index by digest, and only then the tags.
    manifests = [str(image.manifest.digest) for image in image_set.images]
    puts = _manifest_puts(registry)
    assert puts == [*manifests, str(image_set.index.digest), *tags]
    # No manifest before the last blob upload finished (the blob PUTs that close the sessions).
    first_manifest = next(
        i for i, seen in enumerate(registry.requests) if "/manifests/" in seen.path
    )
    last_blob = max(
        i
        for i, seen in enumerate(registry.requests)
        if seen.method in {"PUT", "POST"} and "/blobs/uploads/" in seen.path
    )
    assert last_blob < first_manifest

    assert report.blobs_uploaded == _blob_count(image_set)
    assert report.bytes_uploaded == sum(len(data) for data in registry.blobs.values())
    assert report.manifests == [image.manifest.digest for image in image_set.images]
    assert report.index == image_set.index.digest
    assert report.tags == tags
    assert report.tags_unchanged == []


def test_a_second_push_of_the_same_images_uploads_nothing_and_moves_no_tag(registry, tmp_path):
    image_set = images.image_set(tmp_path / "blobs", shared=images.app_files())
    _push(registry, image_set)
    seen_before = len(registry.requests)

    events: list[PushEvent] = []
    again = _push(registry, image_set, events)

    after = registry.requests[seen_before:]
    assert [r for r in after if "/blobs/uploads/" in r.path] == []  # no upload session at all
    assert {r.method for r in after if "/blobs/" in r.path} == {"HEAD"}
    assert again.blobs_uploaded == again.bytes_uploaded == 0
    assert again.blobs_present == _blob_count(image_set)
    tags = images.six_tags(image_set)
    assert sorted(again.tags_unchanged) == sorted(tags)
    # Nothing is written again: the manifests and the index are there by digest (HEAD), and
    # every tag already points at its digest.
    assert [r.path for r in after if r.method == "PUT"] == []
    assert {e.outcome for e in events if e.kind == "tag"} == {"skipped"}


def test_single_manifests_are_pushed_without_an_index(registry, tmp_path):
    image_set = images.image_set(tmp_path / "blobs", with_index=False)
    tags = images.six_tags(image_set, single_manifests=True)
    with RegistryClient(registry.host, environ={}) as client:
        report = push_image_set(
            client, image_set, Reference.parse(f"{registry.host}/{REPOSITORY}"), tags
        )
    assert report.index is None
    arm, amd = image_set.image_for(ARM64).digest, image_set.image_for(AMD64).digest
    assert set(tags.values()) == {arm, amd}
    assert _manifest_puts(registry) == [str(arm), str(amd), *tags]


def test_a_tag_naming_something_the_push_does_not_write_is_refused_before_any_request(
    registry, tmp_path: Path
):
    image_set = images.image_set(tmp_path / "blobs")
    with (
        RegistryClient(registry.host, environ={}) as client,
        pytest.raises(ConfigError, match="neither a manifest nor the index"),
    ):
        push_image_set(
            client,
            image_set,
            Reference.parse(f"{registry.host}/{REPOSITORY}"),
            {"latest": sha256_of(b"something else")},
        )
    assert registry.requests == []
