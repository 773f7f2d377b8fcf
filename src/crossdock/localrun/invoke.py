"""``crossdock invoke``: run a Lambda image against a local Runtime API and return its answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crossdock.dockercli import Docker
from crossdock.errors import TargetError
from crossdock.localrun.docker_run import LOG_TAIL, failure_with_logs
from crossdock.localrun.lambda_runtime_api import InvocationResult, LambdaRuntimeApi
from crossdock.platform import Platform

__all__ = ["InvokeOutcome", "invoke_image"]


@dataclass(frozen=True)
class InvokeOutcome:
    result: InvocationResult
    # The container's last log lines (the handler's prints, awslambdaric's messages).
    logs: str


def invoke_image(
    image: str,
    platform: Platform,
    event: bytes,
    *,
    timeout_s: float = 120.0,
    pull: bool = True,
    function_name: str = "crossdock-local",
    docker: Docker | None = None,
    progress: Callable[[str], None] = lambda _message: None,
) -> InvokeOutcome:
    """Start ``image`` for ``platform`` with AWS_LAMBDA_RUNTIME_API pointing at a local Runtime
    API, deliver ``event`` once, and return the handler's response or error. The container is
    removed afterwards. Raises TargetError (with the container's last log lines) when the
    function fails to start, exits, or does not answer within ``timeout_s``."""
    docker = docker or Docker()
    if pull:
        progress(f"pulling {image} for {platform}")
        docker.pull(image, platform)
    with LambdaRuntimeApi(function_name=function_name, timeout_s=timeout_s) as api:
        container = docker.start(image, platform, env=api.function_env())
        progress(
            f"started container {container.short_id} ({platform}) against the Runtime API "
            f"on {api.address}"
        )
        try:
            invocation = api.submit(event)
            try:
                result = api.wait(
                    invocation, timeout_s=timeout_s, alive=lambda: docker.is_running(container)
                )
            except TargetError as err:
                raise failure_with_logs(
                    docker,
                    container,
                    f"invoking {image} ({platform}) failed: {err.message}",
                    hint="the image must run awslambdaric (the Lambda base's entrypoint, or "
                    "`python -m awslambdaric HANDLER`); under QEMU arm64 starts slowly: raise "
                    "--timeout",
                ) from err
            return InvokeOutcome(result, docker.logs(container, tail=LOG_TAIL))
        finally:
            docker.remove(container)
