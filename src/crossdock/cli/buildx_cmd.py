"""``crossdock build --backend buildx --dockerfile PATH``: the Dockerfile route of ``build``.

Kept out of build_cmd.py so that the native route stays as it is; ``build`` dispatches here.

``--env`` publishes with the same release code as a native build: buildx pushes each platform
under a staging tag, crossdock verifies it, then the release tags the verified manifests (and the
index crossdock assembles) exactly as it tags a native build, tags last. ``--dry-run`` builds
into docker (``--load``) and verifies, pushes nothing, and prints the tags: their digests are
unknown, because a registry digest exists only once buildx pushes.
"""

from __future__ import annotations

import json
from pathlib import Path

from crossdock.backends.buildx import BuildxBackend, BuildxResult
from crossdock.cli.common import err_console, out_console, progress
from crossdock.cli.push_cmd import publish, render_release
from crossdock.config import Config
from crossdock.errors import ConfigError
from crossdock.plan import BuildPlan
from crossdock.publish.git import head_revision
from crossdock.publish.pipeline import Publishing
from crossdock.publish.release import ReleaseResult
from crossdock.registry.reference import Mirrors
from crossdock.text import literal

__all__ = ["build_with_buildx", "buildx_dockerfile"]


def buildx_dockerfile(
    project: Path, backend_name: str, dockerfile: Path | None, *, local_outputs: bool
) -> Path:
    """The Dockerfile ``--backend buildx --dockerfile PATH`` builds (relative to the project);
    refuses the options only the native backend takes."""
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


def build_with_buildx(
    config: Config,
    dockerfile: Path,
    *,
    publishing: Publishing | None,
    push: str | None,
    tag: str,
    allow: tuple[str, ...],
    json_output: bool,
) -> None:
    """Build with buildx; with ``publishing`` (``--env``/``--dry-run``) release the verified
    images through the same release as a native build."""
    from crossdock.build import make_plan

    plan = make_plan(config, revision=head_revision(config.service_dir))
    backend = BuildxBackend(dockerfile, mirrors=Mirrors(config.registry_mirrors), allow=allow)
    if publishing is None:
        _report(backend.build(plan, progress, push=push, tag=tag), json_output)
    elif publishing.dry_run:
        _report(backend.build(plan, progress, tag=tag), json_output)
        _report_dry_run(publishing, plan, json_output)
    else:
        repository = publishing.request.repository
        result = backend.build(plan, progress, push=str(repository), stage=True)
        if result.staged is None:  # unreachable: stage=True with a repository stages a set
            raise ConfigError("the buildx backend returned no staged images to release")
        _report(result, json_output, publish(publishing, result.staged))


def _report(result: BuildxResult, json_output: bool, release: ReleaseResult | None = None) -> None:
    if json_output:
        out = result.to_json()
        if release is not None:
            out["push"] = release.to_json()
        out_console.print_json(json.dumps(out))
        return
    for image in result.images:
        out_console.print(
            f"{image.platform}  {literal(image.reference)}  built in {image.seconds:.1f}s, "
            f"verification {'passed' if image.verification.passed else 'FAILED'}",
            highlight=False,
        )
    if result.index:
        out_console.print(f"index {result.index}", highlight=False)
    for note in result.notes:
        err_console.print(f"note: {literal(note)}", highlight=False)
    if release is not None:
        render_release(release)


def _report_dry_run(publishing: Publishing, plan: BuildPlan, json_output: bool) -> None:
    """The tags a release would write (same scheme as a native release), without digests."""
    notes: list[str] = []
    assignments = publishing.planned_tags(plan.platforms, notes=notes)
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
