"""``crossdock plan`` and ``crossdock build``."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import (
    AllowOpt,
    BaseOpt,
    JsonOpt,
    PlatformOpt,
    ProjectOpt,
    QuietOpt,
    ServiceOpt,
    TargetOpt,
    VerboseOpt,
    load,
    load_arguments,
    out_console,
    progress,
)
from crossdock.cli.push_cmd import (
    CreateRepositoryOpt,
    DryRunOpt,
    EnvOpt,
    GitShaOpt,
    publish,
)

if TYPE_CHECKING:
    from crossdock.backends.base import Backend
    from crossdock.transports import ImageName


@app.command()
def plan(
    project: ProjectOpt = Path(),
    service: ServiceOpt = None,
    platform: PlatformOpt = None,
    target: TargetOpt = None,
    base: BaseOpt = None,
) -> None:
    """Print the build plan (what would be built, from what, how it runs) as JSON."""
    from crossdock.build import make_plan
    from crossdock.publish.git import head_revision

    config = load(project, service, platform, target, base)
    out_console.print_json(
        json.dumps(make_plan(config, revision=head_revision(config.service_dir)).to_json())
    )


@app.command()
def build(
    project: ProjectOpt = Path(),
    service: ServiceOpt = None,
    platform: PlatformOpt = None,
    target: TargetOpt = None,
    base: BaseOpt = None,
    oci_layout: Annotated[
        str | None,
        typer.Option(
            "--oci-layout", help="Write an OCI image layout folder: DIR or oci:DIR[:TAG]."
        ),
    ] = None,
    docker_archive: Annotated[
        str | None,
        typer.Option(
            "--docker-archive",
            help="Write a tarball `docker load` accepts: FILE or docker-archive:FILE[:REPO:TAG].",
        ),
    ] = None,
    tag: Annotated[str, typer.Option("--tag", help="Tag for local outputs.")] = "latest",
    push: Annotated[
        str | None,
        typer.Option(
            "--push", help="Push to this repository: REGISTRY/REPO[:TAG] or docker://REF."
        ),
    ] = None,
    env: EnvOpt = None,
    dry_run: DryRunOpt = False,
    git_sha: GitShaOpt = None,
    create_repository: CreateRepositoryOpt = False,
    allow: AllowOpt = None,
    json_output: JsonOpt = False,
    backend_name: Annotated[
        str,
        typer.Option(
            "--backend", help="native (no daemon, no QEMU) or buildx (docker buildx + Dockerfile)."
        ),
    ] = "native",
    dockerfile: Annotated[
        Path | None,
        typer.Option(
            "--dockerfile", help="Dockerfile for --backend buildx (relative to --project)."
        ),
    ] = None,
    bytecode: Annotated[
        bool | None,
        typer.Option(
            "--bytecode/--no-bytecode",
            help="Compile bytecode for the image's Python (default: config, on).",
        ),
    ] = None,
    smoke: Annotated[
        bool,
        typer.Option(
            "--smoke",
            help="Before writing or pushing, start each platform's image with docker (arm64 "
            "under QEMU) and import its entry modules; fail the build if one cannot.",
        ),
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build the service's image for each platform, verify it, and write or push it."""
    from crossdock.build import OutputSpec, check_outputs, make_plan
    from crossdock.build import build as run_build
    from crossdock.cache import CacheLayout
    from crossdock.publish.git import head_revision
    from crossdock.publish.pipeline import prepare_release
    from crossdock.transports import DockerArchive, OciLayout, destination, registry_destination

    layout = destination(oci_layout, OciLayout) if oci_layout else None
    archive = destination(docker_archive, DockerArchive) if docker_archive else None
    push = registry_destination(push) if push else None
    buildx = backend_name != "native" or dockerfile is not None
    if buildx:
        from crossdock.backends.dockerfile import target_for_dockerfile
        from crossdock.cli.buildx_cmd import buildx_dockerfile

        local_outputs = layout is not None or archive is not None
        path = buildx_dockerfile(
            project, backend_name, dockerfile, local_outputs=local_outputs, smoke=smoke
        )
        # Dockerfile.lambda builds for Lambda: the file's name says the target unless --target does.
        config = load(project, service, platform, target or target_for_dockerfile(path), base)
    else:
        config = load(project, service, platform, target, base, bytecode=bytecode)
    # Resolved before building (by either backend): a bad destination, one that would refuse
    # the push (TLS, credentials) or a refused dirty tree fails fast, and prod narrows the
    # platforms to the production architecture.
    narrowed, publishing = prepare_release(
        config,
        env=env,
        to=push,
        tag=tag,
        git_sha=git_sha,
        dry_run=dry_run,
        create_repository=create_repository,
        progress=progress,
    )
    config = narrowed or config
    build_plan = make_plan(config, revision=head_revision(config.service_dir))
    backend: Backend
    if buildx:
        from crossdock.cli.buildx_cmd import buildx_backend

        backend = buildx_backend(config, path, publishing, tag=tag, allow=tuple(allow or ()))
        output = None
    else:
        from crossdock.backends.native import NativeBackend

        backend = NativeBackend(allow=tuple(allow or ()))
        output = OutputSpec(
            oci_layout=layout.path if layout else None,
            docker_archive=archive.path if archive else None,
            tag=_local_tag(layout, archive, tag),
            archive_repository=_archive_repository(archive),
        )
    # buildx streams docker's own output to the terminal: no live view over it. The release
    # reads the built layers from the blob cache after build() returned: a `crossdock cache
    # prune` waits for both (the cache's lock, held shared), once the outputs can be written
    # (build() checks them too: a refused output leaves nothing in the cache, not even its lock).
    check_outputs(output)
    with (
        CacheLayout(build_plan.cache_dir).in_use(),
        nullcontext() if buildx else progress.shown(quiet=quiet),
    ):
        outcome = run_build(build_plan, backend, progress, output, smoke=smoke)
        # build() refused what the target cannot run before writing; the release is that set.
        # A buildx dry run built into docker: the digests a push would give are not known.
        release = None
        if publishing is not None and not (buildx and publishing.dry_run):
            release = publish(publishing, outcome.image_set, checked=True)
    if buildx:
        from crossdock.backends.buildx import BuildxBackend
        from crossdock.cli.buildx_cmd import render_buildx

        # The release's tags are written: buildx's staging tags go where the registry allows.
        staging = None
        if isinstance(backend, BuildxBackend) and release is not None and release.report:
            staging = backend.remove_staging_tags(release.plan.image_set, release.plan.tag_digests)
        render_buildx(
            outcome,
            publishing,
            release,
            platforms=build_plan.platforms,
            json_output=json_output,
            staging=staging,
        )
        return
    # A plain --push is answered from the record too (its registry checked by the release); an
    # --env release (timestamped tags), a dry run and --smoke always run the whole command.
    if not smoke and output is not None and env is None and not dry_run:
        # The next identical command line may be answered before any of this is imported.
        from crossdock.cli.build_shortcut import RememberedRelease, remember
        from crossdock.publish.pipeline import ReleaseSettings

        remember(
            build_plan,
            outcome,
            load=load_arguments(project, service, platform, target, base, bytecode=bytecode),
            allow=tuple(allow or ()),
            output=output,
            release=None
            if publishing is None
            else RememberedRelease(
                settings=ReleaseSettings.of(config),
                repository=publishing.request.repository,
                tag=publishing.request.tag,
                git_sha=git_sha,
                create_repository=publishing.create_repository,
            ),
            json_output=json_output,
            quiet=quiet,
            verbose=verbose,
        )
    from crossdock.cli.build_report import report_build

    report_build(outcome, json_output, release, verbose=verbose)


def _local_tag(layout: ImageName | None, archive: ImageName | None, tag: str) -> str:
    """``oci:DIR:TAG`` / ``docker-archive:FILE:REPO:TAG`` name the tag, else ``--tag``."""
    from crossdock.transports import DockerArchive, OciLayout

    if isinstance(layout, OciLayout) and layout.tag:
        return layout.tag
    if isinstance(archive, DockerArchive) and archive.reference:
        return _docker_name(archive.reference)[1] or tag
    return tag


def _archive_repository(archive: ImageName | None) -> str | None:
    from crossdock.transports import DockerArchive

    if isinstance(archive, DockerArchive) and archive.reference:
        return _docker_name(archive.reference)[0]
    return None


def _docker_name(reference: str) -> tuple[str, str | None]:
    """``repo:tag`` -> (repo, tag); a colon before the last slash is a registry port."""
    name, colon, tag = reference.rpartition(":")
    return (name, tag) if colon and "/" not in tag else (reference, None)
