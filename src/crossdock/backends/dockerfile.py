"""What crossdock reads from a Dockerfile before building it (pure: text in, facts out): which
ARGs name base images, which bases are written literally, which deployment target the file's
name says, and the build arguments that point the bases at their registry mirrors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crossdock.errors import ConfigError
from crossdock.registry.reference import Mirrors, Reference

__all__ = ["DockerfileFacts", "mirrored_base_args", "read_dockerfile", "target_for_dockerfile"]

# Dockerfile.<target> is the seed's naming; the suffix says which deployment target it builds.
_DOCKERFILE_TARGETS = {"lambda": "lambda", "apprunner": "apprunner", "eks": "eks"}
_FROM_RE = re.compile(
    r"^FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?\s*$", re.IGNORECASE
)
_ARG_RE = re.compile(r"^ARG\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:=(?P<default>\S*))?\s*$", re.I)
_VAR_RE = re.compile(r"^\$\{?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}?$")


@dataclass(frozen=True)
class DockerfileFacts:
    """What crossdock needs to know about a Dockerfile before building it."""

    # Global ARGs (before the first FROM) that FROM lines use as image names, with defaults.
    base_args: Mapping[str, str]
    # FROM image names written literally (not an ARG, not an earlier stage).
    literal_bases: tuple[str, ...]
    declares_targetplatform: bool


def read_dockerfile(text: str) -> DockerfileFacts:
    """Read the base-image facts of a Dockerfile (continuation lines and comments handled)."""
    lines = _logical_lines(text)
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    base_args: dict[str, str] = {}
    literal: list[str] = []
    declares_tp = False
    seen_from = False
    for line in lines:
        arg = _ARG_RE.match(line)
        if arg and not seen_from:
            global_args[arg["name"]] = arg["default"] or ""
            declares_tp = declares_tp or arg["name"] == "TARGETPLATFORM"
            continue
        found = _FROM_RE.match(line)
        if not found:
            continue
        seen_from = True
        image = found["image"]
        var = _VAR_RE.match(image)
        if var and var["name"] in global_args:
            base_args[var["name"]] = global_args[var["name"]]
        elif image.lower() not in stages and image != "scratch":
            literal.append(image)
        if found["stage"]:
            stages.add(found["stage"].lower())
    return DockerfileFacts(base_args, tuple(dict.fromkeys(literal)), declares_tp)


def _logical_lines(text: str) -> list[str]:
    out: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append(pending + stripped)
        pending = ""
    if pending:
        out.append(pending)
    return out


def target_for_dockerfile(path: Path) -> str | None:
    """``Dockerfile.lambda`` -> ``lambda`` (the seed's naming), else None."""
    _, _, suffix = path.name.partition(".")
    return _DOCKERFILE_TARGETS.get(suffix.lower())


def mirrored_base_args(facts: DockerfileFacts, mirrors: Mirrors) -> dict[str, str]:
    """Build arguments that point the Dockerfile's base ARGs at their mirrors.

    A base written literally in FROM cannot be remapped on dockerd 20.10's BuildKit (no named
    build contexts): refuse with the fix instead of silently pulling from the internet.
    """
    remapped = [b for b in facts.literal_bases if mirrors.apply(Reference.parse(b)) != _ref(b)]
    if remapped:
        raise ConfigError(
            f"the Dockerfile names base image(s) {', '.join(remapped)} directly in FROM, and "
            "registry-mirrors map them elsewhere",
            hint="declare `ARG BASE_IMAGE=<name>` before the first FROM and write "
            "`FROM --platform=$TARGETPLATFORM ${BASE_IMAGE}`; crossdock then passes the mirror",
        )
    args: dict[str, str] = {}
    for name, default in facts.base_args.items():
        if not default:
            continue
        mirrored = mirrors.apply(Reference.parse(default))
        if mirrored != _ref(default):
            args[name] = str(mirrored)
    return args


def _ref(text: str) -> Reference:
    return Reference.parse(text)
