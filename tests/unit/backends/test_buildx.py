"""A staged buildx build released with the seed's tags: which tag names which pushed manifest.

``buildx_image_set`` turns the verified per-platform manifests (what dockerd pushed) into the
``ImageSet`` the release code tags; ``plan_release`` is the same code a native build goes through.
"""

from __future__ import annotations

from crossdock.backends.buildx import buildx_image_set
from crossdock.image import (
    ImageSet,
    MediaType,
    PlatformImage,
)
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.publish.git import GitState
from crossdock.publish.release import ReleaseRequest, plan_release
from crossdock.registry.reference import Reference
from tests.support.images import DOCKER, platform_image, unwritten_layer

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
