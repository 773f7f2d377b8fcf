"""What each deployment target accepts and how images for it are laid out.

Facts (with their sources) rather than code paths: adding a target is adding a ``TargetSpec``.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossdock.config.model import Config
from crossdock.errors import ConfigError, TargetError
from crossdock.plan import PYTHON_PLACEHOLDER, RuntimeSettings
from crossdock.platform import Platform

__all__ = ["TARGETS", "TargetSpec", "target_spec"]


@dataclass(frozen=True)
class TargetSpec:
    name: str
    default_base: str
    # Where the service's own code goes, and where its dependencies go.
    app_dir: str
    deps_dir: str
    # Lambda rejects image indexes (docker/buildx#1533, aws/aws-lambda-roadmap#82).
    single_manifests: bool
    architectures: frozenset[str]
    serves_http: bool
    # Run as an unprivileged user when the base has one (numeric: no passwd lookup needed).
    user: str | None
    note: str

    def runtime(self, config: Config) -> RuntimeSettings:
        """How an image of this target starts; ``{python}`` is the base's interpreter."""
        if self.name == "lambda":
            # The Lambda base's entrypoint runs the runtime interface client; CMD is the handler.
            return RuntimeSettings(
                cmd=(config.lambda_handler,),
                working_dir=self.app_dir,
                env={"LAMBDA_TASK_ROOT": self.app_dir},
            )
        if config.command:
            command: tuple[str, ...] = tuple(config.command)
        else:
            command = (
                PYTHON_PLACEHOLDER,
                "-m",
                "uvicorn",
                config.app,
                "--host",
                "0.0.0.0",  # noqa: S104 - a server in a container listens on all interfaces
                "--port",
                str(config.port),
            )
        # CMD, not ENTRYPOINT: `docker run IMAGE other command` then works as people expect;
        # the empty entrypoint drops any the base had (a Lambda base's, for instance).
        return RuntimeSettings(
            entrypoint=(),
            cmd=command,
            working_dir=self.app_dir,
            env={
                "PYTHONPATH": f"{self.app_dir}:{self.deps_dir}",
                "PYTHONUNBUFFERED": "1",
                "PORT": str(config.port),
            },
            user=self.user,
            exposed_ports=(config.port,),
            path_prepend=(f"{self.deps_dir}/bin",),
        )

    def check_platforms(self, platforms: tuple[Platform, ...]) -> None:
        refused = [p for p in platforms if p.architecture not in self.architectures]
        if refused:
            raise TargetError(
                f"target {self.name} does not run {', '.join(str(p) for p in refused)}",
                hint=f"{self.name} runs {', '.join(sorted(self.architectures))}",
            )


TARGETS: dict[str, TargetSpec] = {
    "lambda": TargetSpec(
        name="lambda",
        default_base="public.ecr.aws/lambda/python:3.13",
        app_dir="/var/task",
        deps_dir="/var/task",
        single_manifests=True,
        architectures=frozenset({"amd64", "arm64"}),
        serves_http=False,
        user=None,
        note="Lambda needs one single-architecture manifest per function; code and "
        "dependencies live in LAMBDA_TASK_ROOT=/var/task; CMD is the handler.",
    ),
    "apprunner": TargetSpec(
        name="apprunner",
        default_base="python:3.13-slim",
        app_dir="/app",
        deps_dir="/opt/crossdock/packages",
        single_manifests=False,
        architectures=frozenset({"amd64", "arm64"}),
        serves_http=True,
        user="65534:65534",
        note="App Runner runs a web server on a port. Its arm64 (Graviton) support is not "
        "documented for image-based services as of this writing: check before relying on it.",
    ),
    "eks": TargetSpec(
        name="eks",
        default_base="python:3.13-slim",
        app_dir="/app",
        deps_dir="/opt/crossdock/packages",
        single_manifests=False,
        architectures=frozenset({"amd64", "arm64"}),
        serves_http=True,
        user="65534:65534",
        note="EKS with mixed Graviton/x86 node groups needs a multi-arch index or node "
        "affinity on kubernetes.io/arch.",
    ),
}


def target_spec(name: str) -> TargetSpec:
    try:
        return TARGETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown target {name!r}", hint=f"choose from {', '.join(sorted(TARGETS))}"
        ) from None
