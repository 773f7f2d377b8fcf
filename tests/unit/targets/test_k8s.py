import json

import kubernetes_validate
import pytest

from crossdock.errors import ConfigError, TargetError
from crossdock.targets.k8s import (
    ARCH_LABEL,
    WorkloadSpec,
    deployment_and_service,
    render_manifests,
)

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
