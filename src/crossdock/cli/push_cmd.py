"""``crossdock push`` and the publishing half of ``crossdock build --env/--push``.

Where a release goes: ``--env ENV`` (the environment's repository from config, the seed's six
tags) or an explicit ``REPO[:TAG]`` (``build --push``, ``push --to``: TAG and TAG-ARCH, or the
environment's tags when ``--env`` is given too). ``--dry-run`` prints the plan and pushes
nothing. The release itself is ``crossdock.publish.pipeline``; this module parses options and
renders results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crossdock import scratch
from crossdock.cli import app
from crossdock.cli.common import (
    JsonOpt,
    ProjectOpt,
    QuietOpt,
    ServiceOpt,
    TargetOpt,
    load,
    out_console,
    progress,
)
from crossdock.cli.release_report import publish, render_release
from crossdock.errors import ConfigError

if TYPE_CHECKING:
    from crossdock.image.artifact import ImageSet

__all__ = [
    "CreateRepositoryOpt",
    "DryRunOpt",
    "EnvOpt",
    "GitShaOpt",
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
    quiet: QuietOpt = False,
) -> None:
    """Push an OCI layout written by `crossdock build --oci-layout` with the release tags."""
    if env is None and to is None:
        raise ConfigError("push needs a destination", hint="pass --env dev|prod or --to REPO")
    # The config names environments, the production architecture and the target; an explicit
    # --to without a service needs none of it.
    config = load(project, service, None, target, None) if env or service else None
    from crossdock.publish.pipeline import prepare_release

    _, publishing = prepare_release(
        config,
        env=env,
        to=to,
        tag=tag,
        git_sha=git_sha,
        dry_run=dry_run,
        create_repository=create_repository,
        progress=progress,
        target=target,  # without a config, --target still says whose rules the push obeys
    )
    if publishing is None:  # unreachable: a destination was checked above
        return
    with (
        progress.shown(quiet=quiet),
        scratch.temporary_directory(prefix="crossdock-push-") as tmp,
    ):
        image_set = _layout_image_set(source, select, Path(tmp))
        result = publish(publishing, image_set)
    if json_output:
        out_console.print_json(json.dumps(result.to_json()))
    else:
        render_release(result)


def _layout_image_set(source: str, select: str | None, work: Path) -> ImageSet:
    """The exact built images (manifest and index bytes) from an OCI layout or a tar of one;
    a registry or docker image has no such bytes to push again."""
    from crossdock.sources.oci_layout import extract_oci_archive, read_oci_build
    from crossdock.transports import OciArchive, OciLayout, parse_image_name

    named = parse_image_name(source)
    if isinstance(named, OciLayout):
        return read_oci_build(named.path, tag=select or named.tag)
    if isinstance(named, OciArchive):
        root = extract_oci_archive(named.path, work / "layout")
        return read_oci_build(root, tag=select or named.tag)
    raise ConfigError(
        f"{source!r}: crossdock push reads an OCI layout (oci:DIR or oci-archive:FILE)",
        hint="write one with `crossdock build --oci-layout oci:DIR`; to copy between "
        "registries use skopeo copy --all",
    )
