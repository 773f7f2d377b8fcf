"""The seed's tag scheme, as data: which tags a push writes and what each one points at.

For environment ENV, UTC timestamp TS (``YYYYMMDD-HHMMSS``), short git SHA and architecture ARCH
the seed writes six tags::

    ENV-TS   ENV-TS-ARCH   ENV-ARCH-latest   ENV-latest   SHA-ARCH   SHA

The rule, template by template:

* A template with ``{arch}`` is written once per built platform and points at that platform's
  single-architecture manifest.
* A template without ``{arch}`` (the *unsuffixed* tags) belongs to the production architecture
  (arm64 by default). It is written only when that architecture was built, and points at
  - the production architecture's single manifest when the target wants single manifests
    (``single_manifests``: Lambda rejects image indexes) or when only one platform was built;
  - the index otherwise (several platforms, e.g. EKS multi-arch): pulling it on the production
    architecture still gets the production image, and other nodes get theirs.
* Other architectures get only their suffixed tags.

Templates use ``{env}``, ``{timestamp}``, ``{sha}`` and ``{arch}``; every tag they render must be
a valid OCI tag.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from crossdock.errors import ConfigError
from crossdock.image.artifact import ImageSet
from crossdock.image.digest import Digest
from crossdock.platform import ARM64, Platform

__all__ = [
    "DEFAULT_TEMPLATES",
    "TagAssignment",
    "format_timestamp",
    "plan_tags",
    "tag_digests",
]

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "{env}-{timestamp}",
    "{env}-{timestamp}-{arch}",
    "{env}-{arch}-latest",
    "{env}-latest",
    "{sha}-{arch}",
    "{sha}",
)
_FIELDS = frozenset({"env", "timestamp", "sha", "arch"})
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_TIMESTAMP_RE = re.compile(r"^\d{8}-\d{6}$")


@dataclass(frozen=True)
class TagAssignment:
    """A tag and what it points at: the index, or one platform's single manifest."""

    tag: str
    points_to: Literal["index"] | Platform

    def __str__(self) -> str:
        return f"{self.tag} -> {self.points_to}"


def format_timestamp(moment: datetime) -> str:
    """``YYYYMMDD-HHMMSS`` in UTC (a naive datetime is refused: its zone is unknown)."""
    if moment.tzinfo is None:
        raise ConfigError("the push timestamp has no time zone", hint="pass an aware datetime")
    return moment.astimezone(UTC).strftime("%Y%m%d-%H%M%S")


def plan_tags(
    env: str,
    timestamp: datetime | str,
    git_sha: str,
    built_platforms: Sequence[Platform],
    production_arch: Platform = ARM64,
    *,
    single_manifests: bool,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
) -> list[TagAssignment]:
    """The tags to write, in template order (per template: platforms in the order given)."""
    if not built_platforms:
        raise ConfigError("no platform was built, so there is nothing to tag")
    stamp = timestamp if isinstance(timestamp, str) else format_timestamp(timestamp)
    if not _TIMESTAMP_RE.match(stamp):
        raise ConfigError(f"timestamp {stamp!r} is not YYYYMMDD-HHMMSS")
    values = {"env": env, "timestamp": stamp, "sha": git_sha}
    production_built = any(p.short == production_arch.short for p in built_platforms)
    unsuffixed_target: Literal["index"] | Platform = (
        production_arch if single_manifests or len(built_platforms) == 1 else "index"
    )
    out: list[TagAssignment] = []
    for template in templates:
        fields = _fields_of(template)
        if "arch" in fields:
            out.extend(
                TagAssignment(_render(template, {**values, "arch": p.architecture}), p)
                for p in built_platforms
            )
        elif production_built:
            target = unsuffixed_target
            if isinstance(target, Platform):
                target = next(p for p in built_platforms if p.short == production_arch.short)
            out.append(TagAssignment(_render(template, values), target))
    seen: set[str] = set()
    for assignment in out:
        if assignment.tag in seen:
            raise ConfigError(
                f"the tag templates write tag {assignment.tag!r} twice",
                hint="make every template distinct (a per-architecture one needs {arch})",
            )
        seen.add(assignment.tag)
    return out


def tag_digests(assignments: Sequence[TagAssignment], image_set: ImageSet) -> dict[str, Digest]:
    """Map each tag to the digest it must point at in ``image_set`` (for ``push_image_set``)."""
    out: dict[str, Digest] = {}
    for assignment in assignments:
        if assignment.points_to == "index":
            if image_set.index is None:
                raise ConfigError(
                    f"tag {assignment.tag!r} should point at an index, but this build has none",
                    hint="plan tags with single_manifests=True for targets without an index",
                )
            out[assignment.tag] = image_set.index.digest
        else:
            try:
                out[assignment.tag] = image_set.image_for(assignment.points_to).digest
            except KeyError as err:
                raise ConfigError(
                    f"tag {assignment.tag!r} names platform {assignment.points_to}, "
                    "which this build does not have"
                ) from err
    return out


def _fields_of(template: str) -> set[str]:
    try:
        parts = [(name, spec) for _, name, spec, _ in string.Formatter().parse(template)]
    except ValueError as err:
        raise ConfigError(f"cannot read tag template {template!r}: {err}") from err
    fields = {name for name, _ in parts if name is not None}
    for _, spec in parts:
        # A spec may shorten a field ({sha:.7}); one that nests a field or pads past a tag's
        # 128 characters cannot make a tag, and a huge width would build the string first.
        if spec and ("{" in spec or any(int(n) > 128 for n in re.findall(r"\d+", spec))):
            raise ConfigError(
                f"tag template {template!r} has a format spec {spec!r} that cannot make a tag",
                hint="templates may use {env}, {timestamp}, {sha} and {arch}, e.g. {sha:.7}",
            )
    unknown = fields - _FIELDS
    if unknown:
        raise ConfigError(
            f"tag template {template!r} uses unknown field(s) {', '.join(sorted(unknown))}",
            hint="templates may use {env}, {timestamp}, {sha} and {arch}",
        )
    return fields


def _render(template: str, values: Mapping[str, str]) -> str:
    try:
        tag = template.format_map(values)
    except (ValueError, KeyError, IndexError) as err:  # a spec or conversion str.format refuses
        raise ConfigError(
            f"tag template {template!r} cannot be rendered: {err}",
            hint="templates may use {env}, {timestamp}, {sha} and {arch}, e.g. {sha:.7}",
        ) from err
    if not _TAG_RE.match(tag):
        raise ConfigError(
            f"tag template {template!r} renders {tag!r}, which is not a valid tag",
            hint="tags are up to 128 letters, digits, '_', '.' and '-', not starting with . or -",
        )
    return tag
