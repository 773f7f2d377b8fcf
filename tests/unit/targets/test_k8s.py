import json
import os

import kubernetes_validate
import pytest

from crossdock.errors import ConfigError, RegistryError, TargetError, UnsafeContentError
from crossdock.image.artifact import ImageSet
from crossdock.image.digest import sha256_of
from crossdock.image.document import MAX_DOCUMENT_BYTES, MAX_MANIFESTS
from crossdock.image.manifest import Index
from crossdock.image.mediatypes import MediaType
from crossdock.platform import AMD64, ARM64
from crossdock.registry.client import RegistryClient
from crossdock.registry.reference import Mirrors, Reference
from crossdock.sources.registry import Registries
from crossdock.targets.k8s import (
    ARCH_LABEL,
    WorkloadSpec,
    architectures_in_registry,
    deployment_and_service,
    render_manifests,
)
from tests.support import images
from tests.support.stage import crossdock

IMAGE = "127.0.0.1:5555/demo/api@sha256:" + "ab" * 32
# An old and a recent Kubernetes version; kubernetes-validate ships their schemas (offline).
KUBERNETES_VERSIONS = ["1.27.0", "1.33.0"]


def _documents(architectures, **workload):
    docs = deployment_and_service(IMAGE, architectures, WorkloadSpec(name="api", **workload))
    # Round-trip through the rendered stream, so what is validated is what is written.
    stream = render_manifests(docs)
    return [json.loads(part) for part in stream.split("---\n") if part.strip()]


def _affinity_values(deployment):
    terms = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert len(terms) == 1
    (expression,) = terms[0]["matchExpressions"]
    assert expression["key"] == ARCH_LABEL
    assert expression["operator"] == "In"
    return expression["values"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("architectures", [("arm64", "amd64"), ("arm64",), ("amd64",)])
def test_manifests_validate_against_the_kubernetes_schema(version, architectures):
    for document in _documents(architectures):
        # strict: unknown fields are errors too.
        kubernetes_validate.validate(document, version, strict=True)


def test_a_schema_violation_is_caught_by_the_validator():
    # The check above can fail: a wrong type in the same document is rejected.
    deployment, _ = _documents(("arm64",))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_affinity_names_exactly_the_given_architectures():
    deployment, _ = _documents(("arm64", "amd64", "arm64"))
    assert _affinity_values(deployment) == ["amd64", "arm64"]
    deployment, _ = _documents(("arm64",))
    assert _affinity_values(deployment) == ["arm64"]


def test_probes_and_ports_follow_the_workload():
    deployment, service = _documents(("amd64",), port=9000, health_path="/ready")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/ready", "port": "http"}
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_refuses_tags_unknown_architectures_and_bad_names():
    with pytest.raises(ConfigError, match="not pinned by digest"):
        deployment_and_service("127.0.0.1:5555/demo/api:latest", ["amd64"], WorkloadSpec("api"))
    with pytest.raises(TargetError):
        deployment_and_service(IMAGE, ["s390x"], WorkloadSpec("api"))
    with pytest.raises(TargetError):
        deployment_and_service(IMAGE, [], WorkloadSpec("api"))
    with pytest.raises(ConfigError, match="not a valid Kubernetes name"):
        deployment_and_service(IMAGE, ["amd64"], WorkloadSpec("My_API"))


# -- reading the image's architectures from a registry (the in-process one) -----------------

REPOSITORY = "team/api"


def _registries(**mirrors: str) -> Registries:
    return Registries(
        lambda host: RegistryClient(host, environ={}),
        Mirrors.parse(",".join(f"{k}={v}" for k, v in mirrors.items())),
    )


def _published(registry, tmp_path, platforms=(ARM64, AMD64)) -> ImageSet:
    built = images.image_set(tmp_path / "blobs", platforms)
    registry.put_image_set(REPOSITORY, built, "1")
    return built


def _store(registry, raw: bytes, media_type: str = MediaType.OCI_INDEX, tag: str = "1") -> None:
    registry.manifests[(REPOSITORY, tag)] = (raw, media_type)
    registry.manifests[(REPOSITORY, str(sha256_of(raw)))] = (raw, media_type)


def test_the_architectures_are_those_of_the_images_under_the_index(registry, tmp_path):
    built = _published(registry, tmp_path)
    with _registries() as registries:
        pinned, arches = architectures_in_registry(
            registries, Reference.parse(f"{registry.host}/{REPOSITORY}:1")
        )
    assert arches == ("amd64", "arm64")
    assert built.index is not None
    assert str(pinned) == f"{registry.host}/{REPOSITORY}@{built.index.digest}"


def test_the_image_is_read_through_the_registry_mirror_and_pinned_under_its_own_name(
    registry, tmp_path
):
    built = _published(registry, tmp_path, (ARM64,))
    with _registries(**{"docker.io": registry.host}) as registries:
        pinned, arches = architectures_in_registry(
            registries, Reference.parse(f"docker.io/{REPOSITORY}:1")
        )
    assert arches == ("arm64",)
    assert built.index is not None
    assert str(pinned) == f"docker.io/{REPOSITORY}@{built.index.digest}"
    assert any(r.path == f"/v2/{REPOSITORY}/manifests/1" for r in registry.requests)


def test_a_platform_manifest_the_registry_serves_altered_is_refused(registry, tmp_path):
    """The index lists arm64, but the manifest served under that entry's digest is other bytes:
    no Deployment may be scheduled on arm64 nodes from it."""
    built = _published(registry, tmp_path)
    arm64 = built.images[0].manifest
    registry.manifests[(REPOSITORY, str(arm64.digest))] = (arm64.raw + b" ", arm64.media_type)
    with _registries() as registries, pytest.raises(RegistryError, match="does not match"):
        architectures_in_registry(registries, Reference.parse(f"{registry.host}/{REPOSITORY}:1"))


def test_an_index_listing_more_manifests_than_any_image_has_is_refused(registry, tmp_path):
    built = _published(registry, tmp_path, (ARM64,))
    listed = built.images[0].manifest.descriptor(ARM64)
    index = Index.build(MediaType.OCI_INDEX, [listed] * (MAX_MANIFESTS + 1))
    _store(registry, index.raw)
    with (
        _registries() as registries,
        pytest.raises(UnsafeContentError, match=f"more than {MAX_MANIFESTS}"),
    ):
        architectures_in_registry(registries, Reference.parse(f"{registry.host}/{REPOSITORY}:1"))


def test_an_index_entry_whose_config_says_another_architecture_is_refused(registry, tmp_path):
    built = _published(registry, tmp_path, (AMD64,))
    amd64_image = built.images[0].manifest
    index = Index.build(MediaType.OCI_INDEX, [amd64_image.descriptor(ARM64)])  # mislabelled
    _store(registry, index.raw)
    with (
        _registries() as registries,
        pytest.raises(
            TargetError, match=r"lists .* as linux/arm64/v8, but its config says linux/amd64"
        ),
    ):
        architectures_in_registry(registries, Reference.parse(f"{registry.host}/{REPOSITORY}:1"))


@pytest.mark.parametrize(
    ("document", "exit_code", "words"),
    [
        (b"{not json", RegistryError.exit_code, "is not an OCI/Docker manifest or index"),
        (b" " * (MAX_DOCUMENT_BYTES + 1), RegistryError.exit_code, "refusing to read it"),
        ("too many", UnsafeContentError.exit_code, f"more than {MAX_MANIFESTS}"),
    ],
    ids=["not-json", "oversized", "too-many-manifests"],
)
def test_crossdock_k8s_says_what_is_wrong_with_a_bad_document_in_one_line(
    registry, tmp_path, document, exit_code, words
):
    if document == "too many":
        built = _published(registry, tmp_path, (ARM64,))
        listed = built.images[0].manifest.descriptor(ARM64)
        document = Index.build(MediaType.OCI_INDEX, [listed] * (MAX_MANIFESTS + 1)).raw
    _store(registry, document)
    env = {**os.environ, "HOME": str(tmp_path), "CROSSDOCK_REGISTRY_MIRRORS": ""}
    run = crossdock(env, "k8s", f"{registry.host}/{REPOSITORY}:1", timeout=120)
    assert run.returncode == exit_code, run.output
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    assert words in errors[0]
    assert "Traceback" not in run.output
    assert run.stdout == ""  # no manifests written
