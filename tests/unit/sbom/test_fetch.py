"""Finding an image's SBOMs again (``crossdock sbom``), in an OCI layout and in a registry (the
in-process one): one bound for an SBOM's size, ``MAX_ARTIFACT_BYTES``, in every reader."""

from __future__ import annotations

import dataclasses
import json

import pytest

from crossdock.errors import UnsafeContentError
from crossdock.image.artifact import ImageSet
from crossdock.image.descriptor import Descriptor
from crossdock.image.digest import sha256_of
from crossdock.image.document import MAX_ARTIFACT_BYTES, MAX_DOCUMENT_BYTES
from crossdock.image.manifest import Manifest
from crossdock.image.mediatypes import MediaType
from crossdock.image.referrer import EMPTY_CONFIG, Referrer, make_referrer
from crossdock.platform import ARM64
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Reference
from crossdock.sbom.document import SBOM_ARTIFACT_TYPE
from crossdock.sbom.fetch import find_sboms
from crossdock.sinks.oci_layout import write_oci_layout
from crossdock.sinks.registry import push_image_set
from tests.support.images import image_set

# Over the 4 MiB of a manifest or config (which every reader of an SBOM used to stop at),
# well under the bound of an SBOM.
LARGE = MAX_DOCUMENT_BYTES + 1024 * 1024


def large_sbom() -> bytes:
    """A CycloneDX-shaped document of about ``LARGE`` bytes."""
    head = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}
    return json.dumps({**head, "filler": "x" * LARGE}).encode()


def with_sbom(images: ImageSet, referrer_for) -> ImageSet:
    first = images.images[0]
    sbom = referrer_for(first.manifest.descriptor())
    return ImageSet((dataclasses.replace(first, referrers=(sbom,)),), None)


def sbom_referrer(content: bytes):
    def make(subject: Descriptor) -> Referrer:
        return make_referrer(subject, SBOM_ARTIFACT_TYPE, SBOM_ARTIFACT_TYPE, content)

    return make


def announcing(size: int):
    """An SBOM artifact whose manifest says its document has ``size`` bytes (a hostile or
    foreign one: the blob it names is small)."""

    def make(subject: Descriptor) -> Referrer:
        content = b'{"bomFormat": "CycloneDX"}'
        config = Descriptor(MediaType.OCI_EMPTY, sha256_of(EMPTY_CONFIG), len(EMPTY_CONFIG))
        layer = Descriptor(SBOM_ARTIFACT_TYPE, sha256_of(content), size)
        manifest = Manifest.build(
            MediaType.OCI_MANIFEST,
            config,
            [layer],
            artifact_type=SBOM_ARTIFACT_TYPE,
            subject=Descriptor(subject.media_type, subject.digest, subject.size),
        )
        return Referrer(manifest, ((config, EMPTY_CONFIG), (layer, content)))

    return make


def test_an_sbom_larger_than_a_manifest_is_found_in_a_layout_and_a_registry(registry, tmp_path):
    document = large_sbom()
    assert MAX_DOCUMENT_BYTES < len(document) < MAX_ARTIFACT_BYTES
    images = with_sbom(image_set(tmp_path / "blobs", (ARM64,)), sbom_referrer(document))
    layout = write_oci_layout(images, tmp_path / "layout")
    (found,) = find_sboms(f"oci:{layout}")
    assert found.document == document
    assert found.platform == ARM64
    repository = Reference.parse(f"{registry.host}/team/api")
    with RegistryClient(registry.host) as client:
        push_image_set(client, images, repository, {"v1": images.images[0].digest})
    (pulled,) = find_sboms(f"{registry.host}/team/api:v1")
    assert pulled.document == document


def test_an_sbom_over_the_bound_is_a_one_line_error_before_it_is_read(registry, tmp_path):
    images = with_sbom(image_set(tmp_path / "blobs", (ARM64,)), announcing(MAX_ARTIFACT_BYTES + 1))
    layout = write_oci_layout(images, tmp_path / "layout")
    with pytest.raises(UnsafeContentError) as in_layout:
        find_sboms(f"oci:{layout}")
    expected = f"the SBOM of linux/arm64/v8 in oci:{layout} "
    assert in_layout.value.message.startswith(expected)
    assert f"is {MAX_ARTIFACT_BYTES + 1} bytes, more than the 64 MiB" in in_layout.value.message
    assert "\n" not in in_layout.value.message
    assert in_layout.value.exit_code == 12
    repository = Reference.parse(f"{registry.host}/team/api")
    with RegistryClient(registry.host) as client:
        push_image_set(client, images, repository, {"v1": images.images[0].digest})
    registry.requests.clear()
    with pytest.raises(UnsafeContentError, match=r"the SBOM of linux/arm64/v8 in .*team/api:v1"):
        find_sboms(f"{registry.host}/team/api:v1")
    (sbom_layer,) = images.images[0].referrers[0].manifest.layers
    assert not [r for r in registry.requests if str(sbom_layer.digest) in r.path]  # not fetched
