"""A staged buildx build released with the seed's tags: which tag names which pushed manifest.

``buildx_image_set`` turns the verified per-platform manifests (what dockerd pushed) into the
``ImageSet`` the release code tags; ``plan_release`` is the same code a native build goes through.
"""

from __future__ import annotations

from pathlib import Path

from crossdock.backends.buildx import StagingCleanup, buildx_image_set, remove_staging_tags
from crossdock.image import (
    Digest,
    ImageSet,
    MediaType,
    PlatformImage,
)
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.publish.git import GitState
from crossdock.publish.release import ReleaseRequest, plan_release
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Reference
from crossdock.sinks.registry import push_image_set
from tests.support.images import DOCKER, image_set, platform_image, unwritten_layer
from tests.support.registry import InProcessRegistry

REPO = Reference.parse("127.0.0.1:5555/team/api")
STAMP = "20250102-030405"
GIT = GitState("abc1234", dirty=False)


def pushed(platform: Platform, media_type: str = MediaType.DOCKER_MANIFEST) -> PlatformImage:
    """A platform image as dockerd pushes it (Docker media types), its layer distinct per arch."""
    layer = unwritten_layer(f"layer for {platform}", media_type=MediaType.DOCKER_LAYER_GZIP)
    return platform_image(platform, [layer], family=DOCKER._replace(manifest=media_type))


def release(image_set: ImageSet, env: str, *, single_manifests: bool) -> dict[str, str]:
    request = ReleaseRequest(REPO, env, single_manifests=single_manifests, git=GIT, timestamp=STAMP)
    return {t.tag: str(t.digest) for t in plan_release(image_set, request).tags}


def test_multi_arch_dev_release_points_unsuffixed_tags_at_the_assembled_index() -> None:
    arm, amd = pushed(ARM64), pushed(AMD64)
    image_set = buildx_image_set([arm, amd], single_manifests=False)
    assert image_set.index is not None
    assert image_set.index.media_type == MediaType.DOCKER_MANIFEST_LIST
    assert [d.digest for d in image_set.index.manifests] == [arm.digest, amd.digest]
    index = str(image_set.index.digest)
    assert release(image_set, "dev", single_manifests=False) == {
        f"dev-{STAMP}": index,
        f"dev-{STAMP}-arm64": str(arm.digest),
        f"dev-{STAMP}-amd64": str(amd.digest),
        "dev-arm64-latest": str(arm.digest),
        "dev-amd64-latest": str(amd.digest),
        "dev-latest": index,
        "abc1234-arm64": str(arm.digest),
        "abc1234-amd64": str(amd.digest),
        "abc1234": index,
    }


def test_lambda_release_has_no_index_and_unsuffixed_tags_name_the_arm64_manifest() -> None:
    arm, amd = pushed(ARM64), pushed(AMD64)
    image_set = buildx_image_set([arm, amd], single_manifests=True)
    assert image_set.index is None
    tags = release(image_set, "dev", single_manifests=True)
    assert tags[f"dev-{STAMP}"] == tags["dev-latest"] == tags["abc1234"] == str(arm.digest)
    assert tags["dev-amd64-latest"] == str(amd.digest)


def test_amd64_only_dev_release_writes_only_amd64_suffixed_tags() -> None:
    # The production architecture (arm64) was not built: the unsuffixed tags would claim it.
    amd = pushed(AMD64)
    image_set = buildx_image_set([amd], single_manifests=False)
    assert image_set.index is None
    assert release(image_set, "dev", single_manifests=False) == {
        f"dev-{STAMP}-amd64": str(amd.digest),
        "dev-amd64-latest": str(amd.digest),
        "abc1234-amd64": str(amd.digest),
    }


def test_prod_release_of_two_platforms_publishes_the_arm64_manifest_alone() -> None:
    arm, amd = pushed(ARM64), pushed(AMD64)
    image_set = buildx_image_set([arm, amd], single_manifests=False)
    tags = release(image_set, "prod", single_manifests=False)
    assert set(tags.values()) == {str(arm.digest)}
    assert set(tags) == {
        f"prod-{STAMP}",
        f"prod-{STAMP}-arm64",
        "prod-arm64-latest",
        "prod-latest",
        "abc1234-arm64",
        "abc1234",
    }


# -- the staging tags, once the release's tags are written -------------------------------------


def staged_release(
    registry: InProcessRegistry, folder: Path
) -> tuple[ImageSet, dict[str, Digest], list[Reference]]:
    """What a staged buildx release leaves in the in-process registry: each platform's
    manifest under its staging tag (buildx's push), then the release's tags (the release)."""
    images = image_set(folder, (ARM64, AMD64))
    assert images.index is not None
    repository = Reference.parse(f"{registry.host}/team/api")
    staged = [repository.with_tag(p.tag("crossdock-staging-1a2b3c4d")) for p in (ARM64, AMD64)]
    tags = {"1.0": images.index.digest, **{i.platform.tag("1.0"): i.digest for i in images.images}}
    with RegistryClient(registry.host) as client:
        for ref, image in zip(staged, images.images, strict=True):
            one = ImageSet((image,), None)
            push_image_set(client, one, repository, {str(ref.tag): image.digest})
        push_image_set(client, images, repository, tags)
    return images, tags, staged


def tags_in(registry: InProcessRegistry) -> set[str]:
    return {ref for (_, ref) in registry.manifests if not ref.startswith("sha256:")}


def test_the_staging_tags_are_deleted_where_the_registry_deletes_a_tag(registry, tmp_path):
    images, tags, staged = staged_release(registry, tmp_path)
    assert tags_in(registry) == {*tags, *(str(ref.tag) for ref in staged)}
    with RegistryClient(registry.host) as client:
        cleanup = remove_staging_tags(client, staged, images, tags)
    assert cleanup == StagingCleanup(removed=tuple(str(ref.tag) for ref in staged))
    assert tags_in(registry) == set(tags)
    deletes = [f"{r.method} {r.path}" for r in registry.requests if r.method == "DELETE"]
    assert deletes == [f"DELETE /v2/team/api/manifests/{ref.tag}" for ref in staged]
    # Every manifest the release tagged is still there, by digest too.
    for tag, digest in tags.items():
        assert (
            registry.manifests[("team/api", tag)] == registry.manifests[("team/api", str(digest))]
        )


def test_a_registry_that_refuses_is_asked_once_and_the_note_says_so(registry, tmp_path):
    images, tags, staged = staged_release(registry, tmp_path)
    registry.quirks.tag_deletion = "refused"  # distribution 2.8
    with RegistryClient(registry.host) as client:
        cleanup = remove_staging_tags(client, staged, images, tags)
    assert cleanup.removed == ()
    assert cleanup.left == tuple(str(ref.tag) for ref in staged)
    assert cleanup.note is not None
    assert cleanup.note.startswith(
        f"left the staging tag(s) {', '.join(cleanup.left)} in {registry.host}/team/api: "
        f"cannot delete tag {staged[0].tag} on {registry.host}/team/api: 400 DIGEST_INVALID"
    )
    assert "\n" not in cleanup.note
    assert [r.method for r in registry.requests].count("DELETE") == 1
    assert tags_in(registry) == {*tags, *cleanup.left}


def test_a_registry_that_deletes_the_manifest_with_the_tag_gets_the_release_written_again(
    registry, tmp_path
):
    images, tags, staged = staged_release(registry, tmp_path)
    registry.quirks.tag_deletion = "manifest"  # takes every tag on that manifest along
    with RegistryClient(registry.host) as client:
        cleanup = remove_staging_tags(client, staged, images, tags)
    assert cleanup.removed == tuple(str(ref.tag) for ref in staged)
    assert cleanup.note is not None
    assert "deleted the manifests with their staging tags" in cleanup.note
    assert "1.0-arm64" in cleanup.note and "1.0-amd64" in cleanup.note
    assert tags_in(registry) == set(tags)
    for tag, digest in tags.items():
        raw, _ = registry.manifests[("team/api", tag)]
        assert digest.matches(raw)
