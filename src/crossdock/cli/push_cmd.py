"""``crossdock push`` and the publishing half of ``crossdock build --env/--push``.

Where a release goes: ``--env ENV`` (the environment's repository from config, the seed's six
tags) or an explicit ``REPO[:TAG]`` (``build --push``, ``push --to``: TAG and TAG-ARCH, or the
environment's tags when ``--env`` is given too). ``--dry-run`` prints the plan and pushes
nothing.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import (
    JsonOpt,
    ProjectOpt,
    ServiceOpt,
    TargetOpt,
    err_console,
    load,
    out_console,
    progress,
)
from crossdock.errors import ConfigError

if TYPE_CHECKING:
    from crossdock.config import Config
    from crossdock.image.artifact import ImageSet
    from crossdock.platform import Platform
    from crossdock.publish.git import GitState
    from crossdock.publish.release import ReleaseRequest, ReleaseResult
    from crossdock.registry.push import PushEvent
    from crossdock.registry.reference import Reference

__all__ = [
    "CreateRepositoryOpt",
    "DryRunOpt",
    "EnvOpt",
    "GitShaOpt",
    "Publishing",
    "prepare_publishing",
    "publish",
    "render_release",
]

EnvOpt = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Publish to this environment (dev, prod) from config, with the seed's six tags.",
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Print what would be pushed where; push nothing.")
]
GitShaOpt = Annotated[
    str | None, typer.Option("--git-sha", help="Commit for the SHA tags (default: git HEAD).")
]
CreateRepositoryOpt = Annotated[
    bool,
    typer.Option("--create-repository", help="Create the ECR repository when it does not exist."),
]


@dataclass(frozen=True)
class Publishing:
    """Where a release goes, resolved from options and config before anything is built."""

    repository: Reference
    env: str | None
    tag: str
    production_arch: Platform
    git: GitState | None
    refuse_dirty: bool
    create_repository: bool
    dry_run: bool
    target: str | None  # whose output rules apply (None: no config, no check)
    templates: tuple[str, ...]  # the tag templates (config's, or the seed's six)

    def request(self, single_manifests: bool) -> ReleaseRequest:
        from crossdock.publish.release import ReleaseRequest

        return ReleaseRequest(
            repository=self.repository,
            env=self.env,
            tag=self.tag,
            production_arch=self.production_arch,
            single_manifests=single_manifests,
            git=self.git,
            refuse_dirty=self.refuse_dirty,
            templates=self.templates,
        )


def prepare_publishing(
    config: Config | None,
    *,
    env: str | None,
    to: str | None,
    tag: str,
    git_sha: str | None,
    dry_run: bool,
    create_repository: bool,
) -> tuple[Config | None, Publishing | None]:
    """Resolve the destination (None: not publishing) and, for prod, narrow the config's
    platforms to the production architecture. Git is asked here, so a refused dirty tree
    fails before the build starts."""
    from crossdock.platform import ARM64, Platform
    from crossdock.publish.release import environment_platforms, release_git_state
    from crossdock.publish.tags import DEFAULT_TEMPLATES

    if env is None and to is None:
        if dry_run:
            raise ConfigError("--dry-run needs somewhere to push", hint="add --env or --push")
        return config, None
    repository, tag = _destination(config, env, to, tag)
    create = create_repository
    if env is not None and config is not None:
        create = create or config.environment(env).create_repository
    production_arch = Platform.parse(config.production_arch) if config else ARM64
    if config is not None and env is not None:
        kept = environment_platforms(env, config.platforms, production_arch)
        if kept != config.platforms:
            dropped = ", ".join(str(p) for p in config.platforms if p not in kept)
            progress(None, f"{env} is always {production_arch.short}: not building {dropped}")
            config = config.model_copy(update={"platforms": kept})
    git = release_git_state(
        config.project_root if config else Path(),
        env=env,
        sha_override=git_sha,
        refuse_dirty=config.refuse_dirty if config else False,
    )
    publishing = Publishing(
        repository=repository,
        env=env,
        tag=tag,
        production_arch=production_arch,
        git=git,
        refuse_dirty=config.refuse_dirty if config else False,
        create_repository=create,
        dry_run=dry_run,
        target=config.target if config else None,
        templates=(config.tag_templates if config else None) or DEFAULT_TEMPLATES,
    )
    return config, publishing


def _destination(
    config: Config | None, env: str | None, to: str | None, tag: str
) -> tuple[Reference, str]:
    """The repository (without tag) and the explicit tag: ``to`` wins over the environment's."""
    from crossdock.registry.reference import Reference
    from crossdock.transports import registry_destination

    if to is not None:
        repository = Reference.parse(registry_destination(to), default_tag=None)
        if repository.digest is not None:
            raise ConfigError(f"{to}: push to a repository (and tag), not to a digest")
        return Reference(repository.registry, repository.repository), repository.tag or tag
    if config is None or env is None:
        raise ConfigError(f"--env {env} needs the project's config", hint="pass --service")
    configured = config.environment(env).repository
    if not configured:
        raise ConfigError(
            f"environment {env!r} has no repository",
            hint=f'set [environments.{env}] repository = "REGISTRY/REPO" in crossdock.toml',
        )
    repository = Reference.parse(configured, default_tag=None)
    if repository.tag is not None or repository.digest is not None:
        raise ConfigError(
            f"environments.{env}.repository {configured!r} names a tag or digest; the tags "
            "come from the tag scheme",
            hint="write it as REGISTRY/REPOSITORY",
        )
    return repository, tag


def publish(publishing: Publishing, image_set: ImageSet) -> ReleaseResult:
    """Plan the release, check it against the target, and push it (unless a dry run)."""
    from crossdock.publish.release import ReleaseResult, plan_release, run_release
    from crossdock.targets import target_spec

    spec = target_spec(publishing.target) if publishing.target else None
    plan = plan_release(image_set, publishing.request(spec.single_manifests if spec else False))
    if spec is not None:
        # What the target cannot run is refused before anything leaves the machine.
        spec.check_output(plan.image_set)
    for note in plan.notes:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)
    if publishing.dry_run:
        progress(None, f"dry run: nothing pushed to {plan.where}")
        return ReleaseResult(plan, None)
    blobs, size = plan.blob_totals()
    progress(None, f"pushing to {plan.where} ({blobs} blobs, {size:,} bytes at most)")

    def on_event(event: PushEvent) -> None:
        if event.kind == "blob" and event.outcome == "uploaded":
            progress(None, f"uploaded {event.name[:19]} ({event.size:,} B)")

    result = run_release(plan, create_repository=publishing.create_repository, on_progress=on_event)
    if result.report is not None:
        progress(None, f"pushed {result.report.summary()}")
    return result


def render_release(result: ReleaseResult) -> None:
    """The tag table and transfer counts, for people."""
    plan = result.plan
    where = plan.where + (f"  env {plan.env}" if plan.env else "")
    if plan.git is not None:
        dirty = {True: ", dirty tree", False: "", None: ", tree not checked"}[plan.git.dirty]
        where += f"  commit {plan.git.sha}{dirty}"
    title = ("DRY RUN: would push to " if result.report is None else "pushed to ") + where
    # Plain aligned lines rather than a table: full digests must stay copyable, unwrapped.
    rows = [("TAG", "DIGEST", "POINTS TO", "STATUS")] + [
        (t.tag, str(t.digest), t.points_to, result.tag_status(t.tag)) for t in plan.tags
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out_console.print(title, highlight=False, soft_wrap=True)
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out_console.print("  " + "  ".join([*cells, row[3]]), highlight=False, soft_wrap=True)
    report = result.report
    if report is None:
        blobs, size = plan.blob_totals()
        out_console.print(f"nothing pushed; up to {blobs} blobs ({size:,} bytes) would be sent")
    else:
        out_console.print(
            f"blobs: {report.blobs_uploaded} uploaded ({report.bytes_uploaded:,} bytes), "
            f"{report.blobs_mounted} mounted, {report.blobs_present} already there; "
            f"tags: {len(report.tags) - len(report.tags_unchanged)} set, "
            f"{len(report.tags_unchanged)} unchanged",
            highlight=False,
        )


@app.command()
def push(
    source: Annotated[
        str,
        typer.Argument(
            help="What `crossdock build --oci-layout` wrote: oci:DIR[:TAG], oci-archive:FILE[:TAG] "
            "or a bare DIR."
        ),
    ],
    env: EnvOpt = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="Push to this repository (REGISTRY/REPO[:TAG] or docker://REF) instead."
        ),
    ] = None,
    project: ProjectOpt = Path(),
    service: ServiceOpt = None,
    target: TargetOpt = None,
    select: Annotated[
        str | None,
        typer.Option("--select", help="Push only the layout's image(s) named TAG (or TAG-ARCH)."),
    ] = None,
    tag: Annotated[str, typer.Option("--tag", help="Tag for --to without a tag.")] = "latest",
    dry_run: DryRunOpt = False,
    git_sha: GitShaOpt = None,
    create_repository: CreateRepositoryOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Push an OCI layout written by `crossdock build --oci-layout` with the release tags."""
    if env is None and to is None:
        raise ConfigError("push needs a destination", hint="pass --env dev|prod or --to REPO")
    # The config names environments, the production architecture and the target; an explicit
    # --to without a service needs none of it.
    config = load(project, service, None, target, None) if env or service else None
    _, publishing = prepare_publishing(
        config,
        env=env,
        to=to,
        tag=tag,
        git_sha=git_sha,
        dry_run=dry_run,
        create_repository=create_repository,
    )
    if publishing is None:  # unreachable: a destination was checked above
        return
    with tempfile.TemporaryDirectory(prefix="crossdock-push-") as tmp:
        image_set = _layout_image_set(source, select, Path(tmp))
        result = publish(publishing, image_set)
    if json_output:
        out_console.print_json(json.dumps(result.to_json()))
    else:
        render_release(result)


def _layout_image_set(source: str, select: str | None, work: Path) -> ImageSet:
    """The exact built images (manifest and index bytes) from an OCI layout or a tar of one;
    a registry or docker image has no such bytes to push again."""
    from crossdock.publish.layout import load_layout_image_set
    from crossdock.transports import OciArchive, OciLayout, parse_image_name
    from crossdock.verify.sources import extract_oci_archive

    named = parse_image_name(source)
    if isinstance(named, OciLayout):
        return load_layout_image_set(named.path, tag=select or named.tag)
    if isinstance(named, OciArchive):
        root = extract_oci_archive(named.path, work / "layout")
        return load_layout_image_set(root, tag=select or named.tag)
    raise ConfigError(
        f"{source!r}: crossdock push reads an OCI layout (oci:DIR or oci-archive:FILE)",
        hint="write one with `crossdock build --oci-layout oci:DIR`; to copy between "
        "registries use skopeo copy --all",
    )
