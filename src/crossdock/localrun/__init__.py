"""Running built images locally with docker: web services until their health path answers,
Lambda functions against a local implementation of the Lambda Runtime API. A foreign
architecture runs under QEMU (binfmt_misc), so an arm64 image can be tried on an x86 laptop."""

from crossdock.dockercli import Container, Docker
from crossdock.localrun.docker_run import default_start_timeout
from crossdock.localrun.health import HealthAnswer, wait_for_health
from crossdock.localrun.invoke import InvokeOutcome, invoke_image
from crossdock.localrun.lambda_runtime_api import (
    Invocation,
    InvocationResult,
    LambdaError,
    LambdaRuntimeApi,
)
from crossdock.localrun.service import RunOutcome, run_service

__all__ = [
    "Container",
    "Docker",
    "HealthAnswer",
    "Invocation",
    "InvocationResult",
    "InvokeOutcome",
    "LambdaError",
    "LambdaRuntimeApi",
    "RunOutcome",
    "default_start_timeout",
    "invoke_image",
    "run_service",
    "wait_for_health",
]
