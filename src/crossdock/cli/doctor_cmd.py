"""``crossdock doctor``: check docker, buildx, QEMU, registries and base images, with fixes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import JsonOpt, ProjectOpt, ServiceOpt, err_console, out_console

__all__ = ["doctor"]


@app.command()
def doctor(
    project: ProjectOpt = Path(),
    service: ServiceOpt = None,
    docker: Annotated[
        str, typer.Option("--docker", help="The docker command to check.")
    ] = "docker",
    binfmt_dir: Annotated[
        Path, typer.Option("--binfmt-dir", help="Where binfmt_misc registrations live.")
    ] = Path("/proc/sys/fs/binfmt_misc"),
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip registry and base-image checks.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Diagnose the seed's Common Issues (exec format error, platform mismatch, QEMU, registry
    access) and say how to fix each; exit code 1 when crossdock cannot build as configured."""
    from crossdock.doctor import HostEnv, doctor_input, run_doctor

    what = doctor_input(project, service, check_network=not offline)
    report = run_doctor(what, HostEnv(docker=docker, binfmt_dir=binfmt_dir, environ=os.environ))
    if json_output:
        out_console.print_json(json.dumps(report.to_json()))
    else:
        report.render(out_console)
        if not report.ok:
            err_console.print("[red]doctor found problems that stop crossdock itself[/]")
    if not report.ok:
        raise typer.Exit(1)
