"""``docker buildx build`` as data: one invocation, fully decided, rendered to its argument list
by a pure function (tests compare it), and the builder driver read from ``buildx inspect``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crossdock.platform import Platform

__all__ = ["BuildxInvocation", "Output", "builder_driver", "render_buildx_args"]

Output = Literal["load", "push"]


@dataclass(frozen=True)
class BuildxInvocation:
    """One ``docker buildx build`` run, fully decided."""

    context: Path
    dockerfile: Path
    platforms: tuple[Platform, ...]
    build_args: Mapping[str, str]
    tags: tuple[str, ...]
    output: Output
    # Lambda refuses image indexes, and attestations wrap the image in one: off for Lambda.
    attestations: bool = False
    # RUN steps reach package indexes through the host's network (and its proxy settings).
    network: str | None = "host"
    builder: str | None = None


def render_buildx_args(invocation: BuildxInvocation) -> list[str]:
    """The argument list after ``docker`` (pure: tests compare it)."""
    args = ["buildx", "build", "--progress=plain"]
    if invocation.builder:
        args += ["--builder", invocation.builder]
    args += ["--platform", ",".join(p.short for p in invocation.platforms)]
    args += ["--file", str(invocation.dockerfile)]
    for name, value in sorted(invocation.build_args.items()):
        args += ["--build-arg", f"{name}={value}"]
    if not invocation.attestations:
        args += ["--provenance=false", "--sbom=false"]
    if invocation.network:
        args += ["--network", invocation.network]
    for tag in invocation.tags:
        args += ["--tag", tag]
    args.append("--load" if invocation.output == "load" else "--push")
    args.append(str(invocation.context))
    return args


def builder_driver(inspect_output: str) -> str | None:
    """The driver named by ``docker buildx inspect`` (``docker``, ``docker-container``...)."""
    for line in inspect_output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Driver":
            return value.strip() or None
    return None
