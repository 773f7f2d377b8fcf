"""Kubernetes manifests for an EKS image: a Deployment and a Service, arch-aware.

The Deployment runs the image *by digest* and may only be scheduled on nodes whose
``kubernetes.io/arch`` label is one of the architectures the image really has (read from the
registry or from a build result): on a mixed Graviton/x86 cluster a single-arch image is then
never started on the wrong nodes, where it would fail with ``exec format error``.

The output is a YAML stream whose documents are JSON (JSON is YAML 1.2), so no YAML library is
needed and ``kubectl apply -f`` reads it as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from crossdock.errors import ConfigError, TargetError
from crossdock.image.artifact import ImageSet
from crossdock.registry.reference import Reference
from crossdock.sources.registry import Registries, read_image_set

__all__ = [
    "ARCH_LABEL",
    "WorkloadSpec",
    "architectures_in_image_set",
    "architectures_in_registry",
    "deployment_and_service",
    "render_manifests",
]

# The well-known node label the kubelet sets from GOARCH: amd64, arm64 (the OCI names).
ARCH_LABEL = "kubernetes.io/arch"
# Architectures a Kubernetes node can report that crossdock builds for.
_KNOWN_ARCHITECTURES = frozenset({"amd64", "arm64"})
# RFC 1123 label: what Deployment and Service names must be.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class WorkloadSpec:
    """What the manifests say about the service, besides the image."""

    name: str
    port: int = 8080
    health_path: str = "/health"
    replicas: int = 2
    namespace: str | None = None
    # Seconds before the first probe: a Python service imports its dependencies first.
    initial_delay_s: int = 5


def architectures_in_image_set(image_set: ImageSet) -> tuple[str, ...]:
    """The architectures a build produced."""
    return tuple(sorted({image.platform.architecture for image in image_set.images}))


def architectures_in_registry(
    registries: Registries, ref: Reference
) -> tuple[Reference, tuple[str, ...]]:
    """``ref`` pinned by digest, and the architectures of the image or index it names.

    Read as every command reads a registry image (``crossdock.sources.registry``): through the
    registry mirrors, each manifest and config checked against its digest and bounded in size,
    an index's list of manifests bounded too. An architecture counts when its image is there
    and its config says so; attestations (``unknown/unknown``) and other artifacts are skipped.
    """
    pull, top = registries.top(ref)
    # The tag is dropped: a Deployment names what it runs by digest alone.
    pinned = Reference(ref.registry, ref.repository, None, top.digest)
    images = read_image_set(registries.client(pull), pull, top, None, name=str(ref)).images
    found: set[str] = set()
    for image in images:
        config = image.config.platform
        listed = image.listed.platform if image.listed is not None else None
        if listed is not None and listed.architecture != config.architecture:
            # A node pulls the entry of its own architecture: this one would not run there.
            raise TargetError(
                f"{ref}: the index lists {image.manifest.digest} as {listed}, but its config "
                f"says {config}",
                hint="the image is inconsistent; rebuild it, or check it with crossdock verify",
            )
        if config.os == "linux":
            found.add(config.architecture)
    architectures = tuple(sorted(found & _KNOWN_ARCHITECTURES))
    if not architectures:
        raise TargetError(
            f"{ref} has no linux/amd64 or linux/arm64 image "
            f"(found: {', '.join(sorted(found)) or 'none'})",
            hint="point crossdock k8s at an image built for EKS",
        )
    return pinned, architectures


def deployment_and_service(
    image: str, architectures: Iterable[str], workload: WorkloadSpec
) -> list[dict[str, Any]]:
    """A Deployment running ``image`` only on nodes of ``architectures``, and a Service."""
    arches = sorted(set(architectures))
    unknown = [a for a in arches if a not in _KNOWN_ARCHITECTURES]
    if not arches or unknown:
        raise TargetError(
            f"cannot schedule on architectures {arches}",
            hint=f"expected a subset of {sorted(_KNOWN_ARCHITECTURES)}",
        )
    if "@sha256:" not in image:
        # A tag can move; a Deployment pinned by digest runs exactly what was checked.
        raise ConfigError(
            f"image {image} is not pinned by digest",
            hint="pass REPOSITORY@sha256:..., or a tag that crossdock resolves in the registry",
        )
    if not _DNS_LABEL.match(workload.name):
        raise ConfigError(
            f"{workload.name!r} is not a valid Kubernetes name (lowercase letters, digits, '-')",
            hint="pass --name with a DNS label such as `api`",
        )
    labels = {"app.kubernetes.io/name": workload.name, "app.kubernetes.io/managed-by": "crossdock"}
    selector = {"app.kubernetes.io/name": workload.name}
    metadata: dict[str, Any] = {"name": workload.name, "labels": labels}
    if workload.namespace:
        metadata["namespace"] = workload.namespace

    def probe(period_s: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": workload.health_path, "port": "http"},
            "initialDelaySeconds": workload.initial_delay_s,
            "periodSeconds": period_s,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        }

    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": workload.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": ARCH_LABEL, "operator": "In", "values": arches}
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "containers": [
                        {
                            "name": workload.name,
                            "image": image,
                            "ports": [
                                {"name": "http", "containerPort": workload.port, "protocol": "TCP"}
                            ],
                            "readinessProbe": probe(period_s=5, failures=3),
                            # Liveness is slower to give up than readiness: a busy pod is taken
                            # out of the Service before it is restarted.
                            "livenessProbe": probe(period_s=10, failures=6),
                            "securityContext": {
                                "runAsNonRoot": True,
                                "allowPrivilegeEscalation": False,
                            },
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def render_manifests(documents: Sequence[dict[str, Any]]) -> str:
    """A YAML stream (``---`` separated) of the documents, each written as JSON."""
    return "".join(f"---\n{json.dumps(doc, indent=2)}\n" for doc in documents)
