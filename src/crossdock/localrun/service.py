"""``crossdock run``: start a web service image with docker and wait for its health path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crossdock.dockercli import Container, Docker
from crossdock.errors import TargetError
from crossdock.localrun.docker_run import failure_with_logs
from crossdock.localrun.health import HealthAnswer, port_is_taken, wait_for_health
from crossdock.platform import Platform

__all__ = ["DEFAULT_PORT", "RunOutcome", "image_port", "run_service"]

# App Runner's default port, and crossdock's (config key `port`).
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class RunOutcome:
    container: Container
    port: int
    answer: HealthAnswer
    kept: bool


def image_port(config: dict[str, object]) -> int | None:
    """The port an image says it serves on: its first exposed TCP port, else its PORT env."""
    exposed = config.get("ExposedPorts") or {}
    if isinstance(exposed, dict):
        for spec in sorted(exposed):
            number, _, proto = str(spec).partition("/")
            if proto in ("", "tcp") and number.isdigit():
                return int(number)
    env = config.get("Env") or []
    for item in env if isinstance(env, list) else []:
        key, _, value = str(item).partition("=")
        if key == "PORT" and value.isdigit():
            return int(value)
    return None


def run_service(
    image: str,
    platform: Platform,
    *,
    health_path: str = "/health",
    port: int | None = None,
    timeout_s: float = 90.0,
    keep: bool = False,
    pull: bool = True,
    docker: Docker | None = None,
    progress: Callable[[str], None] = lambda _message: None,
) -> RunOutcome:
    """Pull and start ``image`` for ``platform`` on the host network, wait until its health
    path answers 2xx, then remove the container (unless ``keep``). Raises TargetError with the
    container's last log lines when it never answers."""
    docker = docker or Docker()
    if pull:
        progress(f"pulling {image} for {platform}")
        docker.pull(image, platform)
    port = port or image_port(docker.image_config(image)) or DEFAULT_PORT
    if port_is_taken(port):
        raise TargetError(
            f"127.0.0.1:{port} is already in use; the container runs on the host network and "
            "its health check would reach that other server",
            hint="stop what listens there (`ss -ltnp`), or run an image built for another port",
        )
    container = docker.start(image, platform)
    progress(f"started container {container.short_id} ({platform}); waiting for {health_path}")
    keep_it = False
    try:
        answer = wait_for_health(
            port, health_path, timeout_s=timeout_s, alive=lambda: docker.is_running(container)
        )
        keep_it = keep
        return RunOutcome(container, port, answer, kept=keep)
    except TargetError as err:
        raise failure_with_logs(
            docker,
            container,
            f"{image} ({platform}) did not become healthy: {err.message}",
            hint="check the image's entrypoint and port (`docker image inspect`); under QEMU "
            "an arm64 service starts slowly: raise --timeout",
        ) from err
    finally:
        if not keep_it:
            docker.remove(container)
