"""The ``crossdock`` command line: thin wrappers that read options, call the library, and
render results for people (rich) or for CI (``--json``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crossdock import __version__
from crossdock.backends.base import BuildOutcome
from crossdock.config import Config, load_config
from crossdock.errors import CrossdockError, VerificationError
from crossdock.platform import Platform

__all__ = ["app", "main"]

app = typer.Typer(
    name="crossdock",
    help="Build, verify and publish correct multi-architecture images for Python services.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Progress and reports go to stderr, so --json output on stdout stays machine-readable.
err_console = Console(stderr=True)
out_console = Console()

ProjectOpt = Annotated[
    Path,
    typer.Option("--project", "-C", help="Project folder (holding crossdock.toml or backend/)."),
]
ServiceOpt = Annotated[
    str | None,
    typer.Option(
        "--service",
        "-s",
        envvar="SERVICE_FOLDER",
        help="Service folder under backend/ (the seed's SERVICE_FOLDER).",
    ),
]
PlatformOpt = Annotated[
    list[str] | None,
    typer.Option("--platform", "-p", help="linux/arm64, linux/amd64 (repeat or comma-separate)."),
]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="lambda, apprunner or eks.")]
BaseOpt = Annotated[str | None, typer.Option("--base", help="Base image reference.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
AllowOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow", help="Accept a known verification failure (glob on path, or CHECK:GLOB)."
    ),
]


def _progress(platform: Platform | None, message: str) -> None:
    where = f"[cyan]{platform.architecture}[/]" if platform else "[cyan]crossdock[/]"
    err_console.print(f"{where} {message}", highlight=False)


def _load(
    project: Path,
    service: str | None,
    platform: list[str] | None,
    target: str | None,
    base: str | None,
    **extra: Any,
) -> Config:
    overrides: dict[str, Any] = {
        "platforms": ",".join(platform) if platform else None,
        "target": target,
        "base": base,
        **extra,
    }
    return load_config(project_dir=project, service=service, overrides=overrides)


@app.command()
def version() -> None:
    """Print crossdock's version."""
    out_console.print(__version__)


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

    config = _load(project, service, platform, target, base)
    out_console.print_json(json.dumps(make_plan(config).to_json()))


@app.command()
def build(
    project: ProjectOpt = Path(),
    service: ServiceOpt = None,
    platform: PlatformOpt = None,
    target: TargetOpt = None,
    base: BaseOpt = None,
    oci_layout: Annotated[
        Path | None, typer.Option("--oci-layout", help="Write an OCI image layout folder.")
    ] = None,
    docker_archive: Annotated[
        Path | None, typer.Option("--docker-archive", help="Write a tarball `docker load` accepts.")
    ] = None,
    tag: Annotated[str, typer.Option("--tag", help="Tag for local outputs.")] = "latest",
    push: Annotated[
        str | None, typer.Option("--push", help="Push to this repository (REGISTRY/REPO[:TAG]).")
    ] = None,
    allow: AllowOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Build the service's image for each platform, verify it, and write or push it."""
    from crossdock.backends.native import NativeBackend
    from crossdock.build import OutputSpec, make_plan
    from crossdock.build import build as run_build
    from crossdock.registry.client import RegistryClient

    config = _load(project, service, platform, target, base)
    build_plan = make_plan(config)
    client = RegistryClient()
    backend = NativeBackend(client, allow=tuple(allow or ()))
    output = OutputSpec(oci_layout=oci_layout, docker_archive=docker_archive, tag=tag)
    outcome = run_build(build_plan, backend, _progress, output)
    if push:
        from crossdock.registry.push import push_image_set
        from crossdock.registry.reference import Reference

        target_ref = Reference.parse(push, default_tag=tag)
        tags = (
            {target_ref.tag or tag: outcome.digest}
            if outcome.image_set.index
            else {
                f"{target_ref.tag or tag}-{image.platform.architecture}": image.digest
                for image in outcome.image_set.images
            }
        )
        push_image_set(client, outcome.image_set, target_ref, tags)
        _progress(None, f"pushed {target_ref.registry}/{target_ref.repository} ({', '.join(tags)})")
    _report(outcome, json_output)


def _report(outcome: BuildOutcome, json_output: bool) -> None:
    if json_output:
        out_console.print_json(
            json.dumps(
                {
                    "digest": str(outcome.digest),
                    "index": str(outcome.image_set.index.digest)
                    if outcome.image_set.index
                    else None,
                    "platforms": [r.to_json() for r in outcome.reports],
                }
            )
        )
        return
    for report in outcome.reports:
        table = Table(title=f"{report.platform}  image {report.image_digest}", title_justify="left")
        table.add_column("what")
        table.add_column("detail", overflow="fold")
        table.add_row("base", str(report.base_digest))
        table.add_row("python / glibc", f"{report.python_version} / {report.glibc_version}")
        table.add_row("wheel platform", report.python_platform)
        for layer in report.layers:
            cached = " (cached)" if layer.cached else ""
            table.add_row(f"layer {layer.role}", f"{layer.digest} {layer.size:,} B{cached}")
        table.add_row(
            "wheels",
            ", ".join(f"{w.name}=={w.version} [{'.'.join(w.tags)}]" for w in report.wheels),
        )
        out_console.print(table)
    if outcome.image_set.index is not None:
        out_console.print(f"index {outcome.image_set.index.digest}")


def main() -> None:
    """Entry point: run the app, turning crossdock's errors into messages and exit codes."""
    try:
        app()
    except VerificationError as err:
        if err.report is not None and hasattr(err.report, "render"):
            err.report.render(err_console)
        err_console.print(f"[red]error:[/] {err}", highlight=False)
        sys.exit(err.exit_code)
    except CrossdockError as err:
        err_console.print(f"[red]error:[/] {err}", highlight=False)
        sys.exit(err.exit_code)
