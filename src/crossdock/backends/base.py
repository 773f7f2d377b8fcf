"""What every backend promises: a plan in, images and a per-platform report out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from crossdock.image.artifact import ImageSet
from crossdock.image.digest import Digest
from crossdock.plan import BuildPlan
from crossdock.platform import Platform
from crossdock.progress import Progress as _Progress

__all__ = ["Backend", "BuildOutcome", "BuildReport", "Progress", "Verification", "WheelInfo"]

# Notes and steps of a build (crossdock.progress): the CLI shows them, tests pass NO_PROGRESS.
Progress = _Progress


class Verification(Protocol):
    """A platform's verification as a build report holds it: ``crossdock.verify``'s
    ``PlatformReport``, or ``lastbuild``'s record of one."""

    @property
    def passed(self) -> bool: ...

    @property
    def counts(self) -> dict[str, int]:
        """The files checked, by kind (the build's report says how many it verified)."""
        ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class WheelInfo:
    name: str
    version: str
    tags: tuple[str, ...]
    built_from_sdist: bool = False


@dataclass(frozen=True)
class LayerInfo:
    role: str
    digest: Digest
    diff_id: Digest
    size: int
    cached: bool = False


@dataclass(frozen=True)
class BuildReport:
    """What the build of one platform made and from what; its ``verification`` is that image's
    ``crossdock.verify.PlatformReport`` (or, for a build recalled by ``lastbuild``, its record).

    The buildx backend knows less than the native one: no base digest (the Dockerfile pulls its
    base), no wheel list; its Python and glibc are what the verifier read in the image."""

    platform: Platform
    base_digest: Digest | None
    image_digest: Digest
    python_version: str
    glibc_version: str
    python_platform: str
    wheels: tuple[WheelInfo, ...]
    layers: tuple[LayerInfo, ...]
    verification: Verification | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The service's own packages, built on the host into pure wheels (in the code's layer).
    local_packages: tuple[WheelInfo, ...] = ()
    # Where the backend left the image besides the cache (buildx: the docker tag it loaded, or
    # the pushed REPOSITORY@DIGEST it read back); None for the native backend, which writes
    # nothing but the cache until the outputs are written.
    location: str | None = None

    def to_json(self) -> dict[str, Any]:
        verification = self.verification
        return {
            "platform": str(self.platform),
            "base_digest": str(self.base_digest) if self.base_digest else None,
            "image_digest": str(self.image_digest),
            "python_version": self.python_version,
            "glibc_version": self.glibc_version,
            "python_platform": self.python_platform,
            "wheels": [
                {
                    "name": w.name,
                    "version": w.version,
                    "tags": list(w.tags),
                    "built_from_sdist": w.built_from_sdist,
                }
                for w in self.wheels
            ],
            "local_packages": [
                {"name": w.name, "version": w.version, "tags": list(w.tags)}
                for w in self.local_packages
            ],
            "layers": [
                {
                    "role": la.role,
                    "digest": str(la.digest),
                    "diff_id": str(la.diff_id),
                    "size": la.size,
                    "cached": la.cached,
                }
                for la in self.layers
            ],
            "verification": verification.to_json() if verification is not None else None,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@dataclass(frozen=True)
class BuildOutcome:
    image_set: ImageSet
    reports: tuple[BuildReport, ...]
    # What the backend wants its user to know about how it built (already said to progress).
    notes: tuple[str, ...] = ()

    @property
    def digest(self) -> Digest:
        """The index digest, or the only image's digest when there is no index."""
        if self.image_set.index is not None:
            return self.image_set.index.digest
        return self.image_set.images[0].digest


class Backend(Protocol):
    name: str

    def build(self, plan: BuildPlan, progress: Progress) -> BuildOutcome: ...
