"""image.mutate: new images from old ones, typed like their base, digests matching the bytes."""

from __future__ import annotations

import json
from pathlib import Path

from crossdock.image import (
    BlobSource,
    Descriptor,
    HistoryEntry,
    MediaType,
    PlatformImage,
    sha256_of,
)
from crossdock.image.mutate import Addendum, append_layers, index_of, with_annotations, with_config
from crossdock.platform import AMD64, ARM64, Platform
from tests.support.images import DOCKER, OCI, Family, platform_image, unwritten_layer


def base(platform: Platform, family: Family) -> PlatformImage:
    return platform_image(
        platform,
        [unwritten_layer("base", media_type=family.layer)],
        family=family,
        config={"Env": ["PATH=/usr/bin"]},
        history=[{"created_by": "base"}],
        annotations={"org.example.base": "yes"},
    )


def addendum(name: str) -> Addendum:
    blob = Descriptor(MediaType.OCI_LAYER_GZIP, sha256_of(name.encode()), len(name))
    return Addendum(
        BlobSource(blob, Path(f"/{name}")), sha256_of(b"tar " + name.encode()), HistoryEntry(name)
    )


def test_append_layers_extends_manifest_and_config_typed_like_the_base() -> None:
    for family in (DOCKER, OCI):
        image = append_layers(base(ARM64, family), [addendum("deps"), addendum("app")])
        manifest_type, config_type, layer_type = family
        assert image.manifest.media_type == manifest_type
        assert image.manifest.config == Descriptor(
            config_type, image.config.digest, len(image.config.raw)
        )
        assert [d.media_type for d in image.manifest.layers] == [layer_type] * 3
        assert [b.path for b in image.layers] == [Path("/base"), Path("/deps"), Path("/app")]
        assert image.config.diff_ids[1:] == (
            sha256_of(b"tar deps"),
            sha256_of(b"tar app"),
        )
        history = [h["created_by"] for h in image.config.data["history"]]
        assert history == ["base", "deps", "app"]
        # The manifest is exactly the bytes its digest names, and names the config's bytes.
        assert image.digest == sha256_of(image.manifest.raw)
        assert json.loads(image.manifest.raw)["config"]["digest"] == str(image.config.digest)


def test_with_config_keeps_layers_and_with_annotations_replaces_the_bases() -> None:
    start = base(AMD64, OCI)
    changed = with_config(start, start.config.with_changes(working_dir="/app"))
    assert changed.config.runtime["WorkingDir"] == "/app"
    assert changed.layers == start.layers
    assert changed.manifest.annotations == {"org.example.base": "yes"}  # kept by other edits
    annotated = with_annotations(changed, {"org.opencontainers.image.title": "api"})
    assert json.loads(annotated.manifest.raw)["annotations"] == {
        "org.opencontainers.image.title": "api"
    }
    # Docker schema 2 manifests have no annotations field.
    docker = with_annotations(base(AMD64, DOCKER), {"a": "b"})
    assert "annotations" not in json.loads(docker.manifest.raw)


def test_index_of_docker_manifests_is_a_manifest_list_anything_else_an_oci_index() -> None:
    docker = [base(ARM64, DOCKER), base(AMD64, DOCKER)]
    listed = index_of(docker)
    assert listed.media_type == MediaType.DOCKER_MANIFEST_LIST
    assert [(d.digest, d.platform) for d in listed.manifests] == [
        (docker[0].digest, ARM64),
        (docker[1].digest, AMD64),
    ]
    assert index_of([base(ARM64, OCI), base(AMD64, OCI)]).media_type == MediaType.OCI_INDEX
    mixed = index_of([base(ARM64, DOCKER), base(AMD64, OCI)], {"a": "b"})
    assert mixed.media_type == MediaType.OCI_INDEX
    assert json.loads(mixed.raw)["annotations"] == {"a": "b"}
