"""``crossdock run``, ``crossdock invoke`` and ``crossdock k8s``: try a built image locally, and
deploy one to Kubernetes on the nodes that can run it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import JsonOpt, ProjectOpt, ServiceOpt, err_console, out_console
from crossdock.errors import ConfigError
from crossdock.platform import Platform, host_platform, parse_platforms

ImageArg = Annotated[
    str, typer.Argument(help="Image reference (REGISTRY/REPO:TAG or @sha256:...).")
]
RunPlatformOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--platform",
        "-p",
        help="linux/arm64 and/or linux/amd64 (repeat or comma-separate; default: the host's). "
        "A foreign architecture runs under QEMU.",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Seconds to wait for the image to answer (default: 120, or 600 for a foreign "
        "architecture: under QEMU a Python service starts slowly).",
    ),
]
NoPullOpt = Annotated[
    bool, typer.Option("--no-pull", help="Use the image already in docker (e.g. `docker load`).")
]


def _platforms(values: list[str] | None) -> tuple[Platform, ...]:
    return parse_platforms(",".join(values)) if values else (host_platform(),)


def _say(message: str) -> None:
    err_console.print(f"[cyan]crossdock[/] {message}", highlight=False)


def _pretty(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


@app.command()
def run(
    image: ImageArg,
    platform: RunPlatformOpt = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port the service listens on (default: the image's)."),
    ] = None,
    health_path: Annotated[
        str, typer.Option("--health-path", help="Path that answers 2xx when healthy.")
    ] = "/health",
    timeout: TimeoutOpt = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the container running after the check.")
    ] = False,
    no_pull: NoPullOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Start a web-service image (apprunner, eks) with docker and wait for its health path."""
    from crossdock.localrun import default_start_timeout, run_service

    results = []
    for each in _platforms(platform):
        outcome = run_service(
            image,
            each,
            health_path=health_path,
            port=port,
            timeout_s=timeout or default_start_timeout(each),
            keep=keep,
            pull=not no_pull,
            progress=_say,
        )
        answer = outcome.answer
        results.append(
            {
                "platform": str(each),
                "url": answer.url,
                "status": answer.status,
                "body": answer.body,
                "seconds": round(answer.elapsed_s, 1),
                "container": outcome.container.id if outcome.kept else None,
            }
        )
        if not json_output:
            _say(
                f"{each}: {answer.url} answered HTTP {answer.status} after {answer.elapsed_s:.1f}s"
            )
            out_console.print(_pretty(answer.body), highlight=False, soft_wrap=True)
            if outcome.kept:
                _say(f"container {outcome.container.short_id} keeps running (`docker rm -f` it)")
    if json_output:
        out_console.print_json(json.dumps(results))


@app.command()
def invoke(
    image: ImageArg,
    event: Annotated[
        Path | None,
        typer.Option("--event", "-e", help="JSON event file ('-' for stdin; default: {})."),
    ] = None,
    platform: RunPlatformOpt = None,
    timeout: TimeoutOpt = None,
    no_pull: NoPullOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Invoke a Lambda image once against a local Lambda Runtime API; print its response."""
    from crossdock.localrun import default_start_timeout, invoke_image

    payload = _read_event(event)
    failed = False
    results = []
    for each in _platforms(platform):
        outcome = invoke_image(
            image,
            each,
            payload,
            timeout_s=timeout or default_start_timeout(each),
            pull=not no_pull,
            progress=_say,
        )
        result = outcome.result
        entry: dict[str, object] = {"platform": str(each), "request_id": result.request_id}
        if result.error is None:
            body = result.response or b""
            try:
                entry["response"] = json.loads(body)
            except ValueError:
                entry["response"] = body.decode("utf-8", "replace")
            if not json_output:
                _say(f"{each}: response to {result.request_id}")
                out_console.print(_pretty(body), highlight=False, soft_wrap=True)
        else:
            failed = True
            error = result.error
            entry["error"] = {
                "type": error.error_type,
                "message": error.message,
                "stack_trace": list(error.stack_trace),
            }
            if not json_output:
                err_console.print(f"[red]{each}: the handler failed[/]", highlight=False)
                err_console.print(error.render(), highlight=False, markup=False)
                if outcome.logs:
                    err_console.print(outcome.logs, highlight=False, markup=False)
        results.append(entry)
    if json_output:
        out_console.print_json(json.dumps(results))
    if failed:
        raise typer.Exit(1)


def _read_event(event: Path | None) -> bytes:
    if event is None:
        return b"{}"
    data = sys.stdin.buffer.read() if str(event) == "-" else _read_file(event)
    try:
        json.loads(data)
    except ValueError as err:
        raise ConfigError(
            f"event {event} is not JSON: {err}", hint="Lambda events are JSON documents"
        ) from err
    return data


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read event file {path}: {err.strerror}") from err


@app.command()
def k8s(
    image: ImageArg,
    name: Annotated[
        str | None, typer.Option("--name", help="Deployment/Service name (default: repository's).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Container port (default: the service's port).")
    ] = None,
    health_path: Annotated[
        str | None,
        typer.Option(
            "--health-path", help="Readiness/liveness probe path (default: the service's)."
        ),
    ] = None,
    project: ProjectOpt = Path(),
    service: ServiceOpt = None,
    replicas: Annotated[int, typer.Option("--replicas", min=0)] = 2,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Write a Deployment + Service for IMAGE, scheduled only on the architectures it has."""
    from crossdock.config import machine_settings
    from crossdock.registry.reference import Reference
    from crossdock.sources.registry import Registries
    from crossdock.targets.k8s import (
        WorkloadSpec,
        architectures_in_registry,
        deployment_and_service,
        render_manifests,
    )

    ref = Reference.parse(image)
    default_port, default_health = _served_at(project, service)
    with Registries(mirrors=machine_settings().registry_mirrors) as registries:
        pinned, architectures = architectures_in_registry(registries, ref)
    workload = WorkloadSpec(
        name=name or ref.repository.rsplit("/", 1)[-1],
        port=port or default_port,
        health_path=health_path or default_health,
        replicas=replicas,
        namespace=namespace,
    )
    text = render_manifests(deployment_and_service(str(pinned), architectures, workload))
    _say(f"{pinned}: schedulable on kubernetes.io/arch in {list(architectures)}")
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        _say(f"wrote {output}")


def _served_at(project: Path, service: str | None) -> tuple[int, str]:
    """The service's port and health path from config; outside a project (an image from
    anywhere), crossdock's defaults. A service asked for by name must load."""
    from crossdock.config import default_settings, load_config

    try:
        config = load_config(project_dir=project, service=service)
    except ConfigError:
        if service is not None:
            raise
        defaults = default_settings()
        return int(defaults["port"]), str(defaults["health-path"])
    return config.port, config.health_path
