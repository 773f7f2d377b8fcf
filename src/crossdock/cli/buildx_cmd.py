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
from collections.abc import Callable
from pathlib import Path

from crossdock.backends.buildx import BuildxBackend, BuildxResult, target_for_dockerfile
from crossdock.cli.common import err_console, load, out_console, progress
from crossdock.cli.push_cmd import Publishing, publish, render_release
from crossdock.config import Config
from crossdock.errors import ConfigError
from crossdock.plan import BuildPlan
from crossdock.publish.git import head_revision
from crossdock.publish.release import ReleaseResult, release_tags
from crossdock.registry.reference import Mirrors

__all__ = ["build_with_buildx"]


def build_with_buildx(
    project: Path,
    service: str | None,
    platform: list[str] | None,
    target: str | None,
    base: str | None,
    backend_name: str,
    dockerfile: Path | None,
    tag: str,
    push: str | None,
    allow: tuple[str, ...],
    json_output: bool,
    *,
    local_outputs: tuple[Path | None, ...] = (),
    resolve_publishing: Callable[[Config], tuple[Config | None, Publishing | None]] | None = None,
) -> None:
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
    if any(local_outputs):
        raise ConfigError(
            "--oci-layout and --docker-archive are native-backend outputs",
            hint="with --backend buildx, images are loaded into docker (default) or --push'ed",
        )
    path = dockerfile if dockerfile.is_absolute() else project / dockerfile
    # Dockerfile.lambda builds for Lambda: the file's name says the target unless --target does.
    config = load(project, service, platform, target or target_for_dockerfile(path), base)
    publishing = None
    if resolve_publishing is not None:  # --env / --dry-run: a release (build_cmd.build)
        narrowed, publishing = resolve_publishing(config)
        config = narrowed or config
    from crossdock.build import make_plan

    plan = make_plan(config, revision=head_revision(config.service_dir))
    backend = BuildxBackend(path, mirrors=Mirrors(config.registry_mirrors), allow=allow)
    if publishing is None:
        _report(backend.build(plan, progress, push=push, tag=tag), json_output)
    elif publishing.dry_run:
        _report(backend.build(plan, progress, tag=tag), json_output)
        _report_dry_run(publishing, plan, json_output)
    else:
        result = backend.build(plan, progress, push=str(publishing.repository), stage=True)
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
            f"{image.platform}  {image.reference}  built in {image.seconds:.1f}s, "
            f"verification {'passed' if image.verification.passed else 'FAILED'}",
            highlight=False,
        )
    if result.index:
        out_console.print(f"index {result.index}", highlight=False)
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False)
    if release is not None:
        render_release(release)


def _report_dry_run(publishing: Publishing, plan: BuildPlan, json_output: bool) -> None:
    """The tags a release would write (same scheme as a native release), without digests."""
    notes: list[str] = []
    # An index is written only over several platforms of a target that accepts one.
    single = plan.single_manifests or len(plan.platforms) < 2
    request = publishing.request(plan.single_manifests)
    assignments = release_tags(request, plan.platforms, single_manifests=single, notes=notes)
    where = f"{publishing.repository.registry}/{publishing.repository.repository}"
    if json_output:
        tags = [{"tag": a.tag, "digest": None, "points_to": str(a.points_to)} for a in assignments]
        out = {"dry_run": True, "repository": where, "env": publishing.env, "tags": tags}
        out_console.print_json(json.dumps({**out, "notes": notes}))
        return
    for note in notes:
        err_console.print(f"note: {note}", highlight=False)
    out_console.print(f"DRY RUN: would push to {where}; nothing pushed", highlight=False)
    width = max(len(a.tag) for a in assignments)
    for a in assignments:
        out_console.print(f"  {a.tag.ljust(width)}  -> {a.points_to}", highlight=False)
    out_console.print(
        "digests are known only once buildx pushes (buildx built into docker for this dry run)",
        highlight=False,
    )
