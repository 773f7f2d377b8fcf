"""The local readers of crossdock.sources, each returning the one image model: what a sink wrote
(an OCI layout, a docker save tarball) reads back with the same digests, each image knowing the
entry that lists it, every blob checked (the registry reader: tests/integration/test_sources.py)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from crossdock.errors import ConfigError, NotFoundError, UnsafeContentError
from crossdock.image.artifact import ImageSet
from crossdock.image.mediatypes import MediaType
from crossdock.platform import AMD64, ARM64, Platform
from crossdock.sinks import write_oci_layout
from crossdock.sinks.docker_archive import write_docker_archive
from crossdock.sources import image_label, open_images
from crossdock.sources.docker_archive import read_docker_archive
from crossdock.sources.oci_layout import REF_NAME, read_oci_build, read_oci_layout
from crossdock.transports import DockerArchive, OciLayout
from tests.support.images import image_set, layer, platform_image


def _digests(images) -> list[tuple[Platform, str]]:
    return [(image.platform, str(image.digest)) for image in images]


# -- OCI layout -----------------------------------------------------------------------------


def test_a_multi_platform_layout_reads_back_as_its_index_and_images(tmp_path):
    built = image_set(tmp_path / "blobs")
    write_oci_layout(built, tmp_path / "layout", tag="v1")
    (found,) = read_oci_layout(tmp_path / "layout")
    assert found.index is not None and built.index is not None
    assert found.index.raw == built.index.raw
    assert _digests(found.images) == _digests(built.images)
    for image in found.images:
        # Each image knows the index entry that lists it: its platform is the index's claim.
        assert image.listed is not None and image.listed.platform == image.platform
        assert [b.descriptor for b in image.layers] == list(image.manifest.layers)
    # The push view of the same layout: the same bytes.
    assert read_oci_build(tmp_path / "layout").index == found.index


def test_without_layers_no_layer_blob_is_read(tmp_path):
    built = image_set(tmp_path / "blobs")
    layout = write_oci_layout(built, tmp_path / "layout")
    layer_digest = built.images[0].layers[-1].descriptor.digest
    (layout / "blobs" / "sha256" / layer_digest.hex).unlink()
    (found,) = read_oci_layout(layout, layers=False)
    assert _digests(found.images) == _digests(built.images)
    assert all(image.layers == () for image in found.images)
    with pytest.raises(NotFoundError, match="missing from the layout"):
        read_oci_layout(layout)


def test_a_tag_selects_the_single_manifests_named_tag_arch(tmp_path):
    """Lambda layouts have no index: index.json names each manifest TAG-ARCH, and both views
    select them by TAG."""
    built = image_set(tmp_path / "blobs", with_index=False)
    layout = write_oci_layout(built, tmp_path / "layout", tag="v1")
    (found,) = read_oci_layout(layout, tag="v1")
    assert found.index is None
    assert _digests(found.images) == _digests(built.images)
    assert {image.listed.annotations[REF_NAME] for image in found.images if image.listed} == {
        "v1-arm64",
        "v1-amd64",
    }
    (arm,) = read_oci_layout(layout, tag="v1", platforms=[ARM64])
    assert _digests(arm.images) == _digests(built.images[:1])
    assert _digests(read_oci_build(layout, tag="v1").images) == _digests(built.images)
    with pytest.raises(NotFoundError, match="no image with that tag") as missing:
        read_oci_layout(layout, tag="v2")
    assert "v1-amd64" in (missing.value.hint or "")
    with pytest.raises(ConfigError, match="no image tagged 'v2'"):
        read_oci_build(layout, tag="v2")


def test_a_layout_naming_an_image_by_a_wrong_platform_is_refused_for_push(tmp_path):
    built = image_set(tmp_path / "blobs", with_index=False)
    layout = write_oci_layout(built, tmp_path / "layout", tag="v1")
    index_json = json.loads((layout / "index.json").read_text())
    for entry in index_json["manifests"]:
        entry["platform"]["architecture"] = (
            "amd64" if "arm64" in entry["platform"].values() else "arm64"
        )
        entry["platform"].pop("variant", None)
    (layout / "index.json").write_text(json.dumps(index_json))
    with pytest.raises(UnsafeContentError, match="but its config says"):
        read_oci_build(layout)
    # Verify reads it, and keeps the claim for its platform-label check.
    (found,) = read_oci_layout(layout)
    claims = {str(i.listed.platform) for i in found.images if i.listed}
    assert claims == {"linux/amd64", "linux/arm64"}
    assert {i.config.platform.architecture for i in found.images} == {"amd64", "arm64"}


# -- docker save ----------------------------------------------------------------------------


def test_a_docker_save_tarball_reads_back_with_its_tags_and_layer_types(tmp_path):
    gzipped = layer(tmp_path / "blobs", {"app/a.txt": b"a\n"})
    plain = layer(tmp_path / "blobs", {"app/b.txt": b"b\n"}, media_type=MediaType.OCI_LAYER)
    built = platform_image(AMD64, [gzipped, plain])
    archive = tmp_path / "image.tar"
    write_docker_archive(ImageSet((built,), None), archive, repository="example/api", tag="v1")
    found = read_docker_archive(archive, tmp_path / "work")
    (image,) = found.images
    assert found.index is None
    assert image.config.raw == built.config.raw
    # Known by the digests of their bytes; typed by their bytes (gzip or a plain tar).
    assert [b.descriptor.digest for b in image.layers] == [
        gzipped.blob.descriptor.digest,
        plain.blob.descriptor.digest,
    ]
    assert [b.descriptor.media_type for b in image.layers] == [
        MediaType.OCI_LAYER_GZIP,
        MediaType.OCI_LAYER,
    ]
    assert image.manifest.config.digest == built.config.digest
    assert image.listed is not None and image.listed.platform is None  # no index claims one
    assert (
        image_label(DockerArchive(archive), image)
        == "docker-archive:image.tar:example/api:v1-amd64"
    )
    assert read_docker_archive(archive, tmp_path / "w2", platforms=[ARM64]).images == ()


def test_a_docker_save_layer_whose_content_is_not_its_diff_id_is_refused(tmp_path):
    built = platform_image(AMD64, [layer(tmp_path / "blobs", {"app/a.txt": b"a\n"})])
    config = json.loads(built.config.raw)
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    raw = json.dumps(config).encode()
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (
            ("config.json", raw),
            ("l/layer.tar", built.layers[0].path.read_bytes()),
            (
                "manifest.json",
                json.dumps([{"Config": "config.json", "Layers": ["l/layer.tar"]}]).encode(),
            ),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(UnsafeContentError, match="does not match the diff_id"):
        read_docker_archive(archive, tmp_path / "work")
    assert gzip.decompress(built.layers[0].path.read_bytes())  # the layer itself is fine


def test_open_images_reads_any_source_by_its_name(tmp_path):
    built = image_set(tmp_path / "blobs")
    layout = write_oci_layout(built, tmp_path / "layout")
    with open_images(f"oci:{layout}") as sets:
        (found,) = sets
        assert _digests(found.images) == _digests(built.images)
        image = found.images[0]
        assert image_label(OciLayout(layout), image) == f"oci:{layout}@{image.digest}"
    with (
        pytest.raises(NotFoundError, match="has no image for linux/s390x"),
        open_images(f"oci:{layout}", platforms=[Platform("linux", "s390x")]),
    ):
        pass
