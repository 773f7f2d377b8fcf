"""crossdock.sources.registry against the in-process registry (real HTTP on loopback, no
mocks): a pushed image set reads back with the same digests, each image knowing the index entry
that lists it; layers, platform manifests and configs are pulled once into the blob cache, and a
later read of one platform (the native backend's base pull) asks the registry for the tag only."""

from __future__ import annotations

import pytest

from crossdock.cache import BlobCache
from crossdock.errors import BaseImageError
from crossdock.image.artifact import PlatformImage
from crossdock.platform import AMD64, Platform
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Reference
from crossdock.sinks.registry import push_image_set
from crossdock.sources.registry import Registries, pull_image_set, pull_platform_image
from tests.support.images import image_set


def _digests(images: tuple[PlatformImage, ...]) -> list[tuple[Platform, str]]:
    return [(image.platform, str(image.digest)) for image in images]


def test_a_pushed_image_set_reads_back_and_its_layers_are_pulled_once(registry, tmp_path):
    built = image_set(tmp_path / "blobs")
    assert built.index is not None
    ref = Reference.parse(f"{registry.host}/team/api:v1")
    with RegistryClient(registry.host) as client:
        push_image_set(client, built, ref, {"v1": built.index.digest})
    blobs = BlobCache(tmp_path / "cache")
    found = pull_image_set(ref, blobs)
    assert found.index is not None and found.index.raw == built.index.raw
    assert _digests(found.images) == _digests(built.images)
    for image in found.images:
        assert image.listed is not None and image.listed.platform == image.platform
        assert all(blobs.has(b.descriptor) for b in image.layers)
        assert all(b.origin == f"{registry.host}/team/api" for b in image.layers)

    # The build's read of one platform: no layer downloaded again; and read again, the tag's
    # index only: the platform's manifest (named by its digest) and config were kept in the
    # blob cache by the first read.
    def read_amd64() -> PlatformImage:
        with Registries() as registries:
            pull, top = registries.top(ref)
            return pull_platform_image(
                registries.client(pull), pull, top, AMD64, blobs, name="base", hint="-"
            )

    pulled = len(registry.methods("/blobs/"))
    first = read_amd64()
    assert first.digest == built.image_for(AMD64).digest
    layer_gets = [
        m
        for m in registry.methods("/blobs/")[pulled:]
        if m.startswith("GET") and any(str(b.descriptor.digest) in m for b in first.layers)
    ]
    assert layer_gets == []
    asked = len(registry.requests)
    again = read_amd64()
    assert again.digest == built.image_for(AMD64).digest
    assert again.config.raw == built.image_for(AMD64).config.raw
    gets = [f"{r.method} {r.path}" for r in registry.requests[asked:] if r.method == "GET"]
    assert gets == ["GET /v2/", "GET /v2/team/api/manifests/v1"]  # the ping, the tag
    # A cached config that no longer holds its bytes is fetched again.
    config = blobs.path_for(again.config.digest)
    config.write_bytes(config.read_bytes().replace(b"amd64", b"arm64"))
    asked = len(registry.requests)
    assert read_amd64().config.raw == built.image_for(AMD64).config.raw
    assert f"GET /v2/team/api/blobs/{again.config.digest}" in [
        f"{r.method} {r.path}" for r in registry.requests[asked:]
    ]
    with Registries() as registries, pytest.raises(BaseImageError) as missing:
        pull, top = registries.top(ref)
        pull_platform_image(
            registries.client(pull),
            pull,
            top,
            Platform("linux", "s390x"),
            blobs,
            name="base image x",
            hint="pick another",
        )
    assert "base image x has no linux/s390x image (it has: linux/arm64/v8, linux/amd64)" in str(
        missing.value
    )
