"""``crossdock build --backend buildx --dockerfile PATH``: the Dockerfile route of ``build``.

Kept out of build_cmd.py so that the native route stays as it is; ``build`` dispatches here.
"""

from __future__ import annotations

import json
from pathlib import Path

from crossdock.backends.buildx import BuildxBackend, BuildxResult, target_for_dockerfile
from crossdock.cli.common import err_console, load, out_console, progress
from crossdock.errors import ConfigError
from crossdock.publish.git import head_revision
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
    from crossdock.build import make_plan

    plan = make_plan(config, revision=head_revision(config.service_dir))
    backend = BuildxBackend(path, mirrors=Mirrors(config.registry_mirrors), allow=allow)
    result = backend.build(plan, progress, push=push, tag=tag)
    _report(result, json_output)


def _report(result: BuildxResult, json_output: bool) -> None:
    if json_output:
        out_console.print_json(json.dumps(result.to_json()))
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
