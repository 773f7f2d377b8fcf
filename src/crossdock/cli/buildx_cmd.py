"""``crossdock build --backend buildx --dockerfile PATH``: the options only the Dockerfile route
of ``build`` reads, and how its result is shown. The build itself is ``build``'s own path
(``crossdock.build.build`` with a ``BuildxBackend``, then ``publish.pipeline.release``).

A release (``--env``, ``--push``) has buildx push each platform under a staging tag, crossdock
verify it, then the release tag the verified manifests (and the index crossdock assembles)
exactly as it tags a native build, tags last. ``--dry-run`` builds into docker (``--load``) and
verifies, pushes nothing, and prints the tags: their digests are unknown, because a registry
digest exists only once buildx pushes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossdock.cli.common import err_console, out_console
from crossdock.cli.push_cmd import render_release
from crossdock.errors import ConfigError
from crossdock.text import literal

if TYPE_CHECKING:
    from crossdock.backends.base import BuildOutcome
    from crossdock.backends.buildx import BuildxBackend, StagingCleanup
    from crossdock.config import Config
    from crossdock.platform import Platform
    from crossdock.publish.pipeline import Publishing
    from crossdock.publish.release import ReleaseResult

__all__ = ["buildx_backend", "buildx_dockerfile", "render_buildx"]


def buildx_dockerfile(
    project: Path,
    backend_name: str,
    dockerfile: Path | None,
    *,
    local_outputs: bool,
    smoke: bool,
) -> Path:
    """The Dockerfile ``--backend buildx --dockerfile PATH`` builds (relative to the project);
    refuses the options only the native backend takes."""
    if smoke:
        raise ConfigError(
            "--smoke is for the native backend",
            hint="docker buildx already ran the build steps inside the image; run the "
            "image with `crossdock run` to try it",
        )
    if backend_name != "buildx":
        raise ConfigError(
            f"unknown backend {backend_name!r}"
            if backend_name != "native"
            else "--dockerfile is only read by the buildx backend",
            hint="use --backend native (default) or --backend buildx --dockerfile PATH",
        )
    if dockerfile is None:
        raise ConfigError(
            "--backend buildx needs --dockerfile",
            hint="e.g. --dockerfile backend/Dockerfile.lambda",
        )
    if local_outputs:
        raise ConfigError(
            "--oci-layout and --docker-archive are native-backend outputs",
            hint="with --backend buildx, images are loaded into docker (default) or --push'ed",
        )
    return dockerfile if dockerfile.is_absolute() else project / dockerfile


def buildx_backend(
    config: Config,
    dockerfile: Path,
    publishing: Publishing | None,
    *,
    tag: str,
    allow: tuple[str, ...],
) -> BuildxBackend:
    """The backend for these options: a release stages its pushes in the release's repository;
    anything else (a dry run too) loads into docker as ``crossdock/SERVICE:TAG-ARCH``."""
    from crossdock.backends.buildx import BuildxBackend, DockerStore, StagingRepository
    from crossdock.registry.reference import Mirrors

    releasing = publishing is not None and not publishing.dry_run
    output = (
        StagingRepository(publishing.request.repository)
        if publishing is not None and releasing
        else DockerStore(tag)
    )
    return BuildxBackend(
        dockerfile, mirrors=Mirrors(config.registry_mirrors), output=output, allow=allow
    )


def render_buildx(
    outcome: BuildOutcome,
    publishing: Publishing | None,
    release: ReleaseResult | None,
    *,
    platforms: tuple[Platform, ...],
    json_output: bool,
    staging: StagingCleanup | None = None,
) -> None:
    """Each platform where buildx left it and its verdict, the index the release pushed, the
    backend's notes, then the release (or, for a dry run, the tags it would write) and what
    became of the staging tags (a note, once, when they stay)."""
    index = _released_index(outcome, publishing, release)
    if json_output:
        out: dict[str, Any] = {
            "backend": "buildx",
            "images": [
                {
                    "platform": str(report.platform),
                    "reference": report.location,
                    "seconds": round(report.timings.get("total", 0.0), 1),
                    "verification": (
                        report.verification.to_json() if report.verification is not None else None
                    ),
                }
                for report in outcome.reports
            ],
            "index": index,
            "notes": list(outcome.notes),
        }
        if release is not None:
            out["push"] = release.to_json()
        if staging is not None:
            out["staging_tags"] = staging.to_json()
        out_console.print_json(json.dumps(out))
    else:
        for report in outcome.reports:
            verified = report.verification is not None and report.verification.passed
            passed = "passed" if verified else "FAILED"
            out_console.print(
                f"{report.platform}  {literal(report.location or '')}  built in "
                f"{report.timings.get('total', 0.0):.1f}s, verification {passed}",
                highlight=False,
            )
        if index:
            out_console.print(f"index {index}", highlight=False)
        for note in outcome.notes:
            err_console.print(f"note: {literal(note)}", highlight=False)
        if release is not None:
            render_release(release)
    if staging is not None and staging.note is not None:
        err_console.print(f"note: {literal(staging.note)}", highlight=False)
    if publishing is not None and publishing.dry_run:
        _render_dry_run(publishing, platforms, json_output)


def _released_index(
    outcome: BuildOutcome, publishing: Publishing | None, release: ReleaseResult | None
) -> str | None:
    """``REPOSITORY[:TAG]@DIGEST`` of the index the release pushed (None: no index pushed)."""
    index = outcome.image_set.index
    if publishing is None or release is None or release.report is None or index is None:
        return None
    request = publishing.request
    tag = f":{request.tag}" if request.env is None else ""
    return f"{publishing.where}{tag}@{index.digest}"


def _render_dry_run(
    publishing: Publishing, platforms: tuple[Platform, ...], json_output: bool
) -> None:
    """The tags a release would write (same scheme as a native release), without digests."""
    notes: list[str] = []
    assignments = publishing.planned_tags(platforms, notes=notes)
    where = publishing.where
    if json_output:
        tags = [{"tag": a.tag, "digest": None, "points_to": str(a.points_to)} for a in assignments]
        out = {"dry_run": True, "repository": where, "env": publishing.request.env, "tags": tags}
        out_console.print_json(json.dumps({**out, "notes": notes}))
        return
    for note in notes:
        err_console.print(f"note: {literal(note)}", highlight=False)
    out_console.print(f"DRY RUN: would push to {literal(where)}; nothing pushed", highlight=False)
    width = max(len(a.tag) for a in assignments)
    for a in assignments:
        out_console.print(literal(f"  {a.tag.ljust(width)}  -> {a.points_to}"), highlight=False)
    out_console.print(
        "digests are known only once buildx pushes (buildx built into docker for this dry run)",
        highlight=False,
    )
