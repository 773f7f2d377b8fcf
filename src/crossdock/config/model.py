"""The resolved configuration: frozen values, validated once, unknown keys refused."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crossdock.platform import Platform, parse_platforms
from crossdock.project import ServiceProject

__all__ = ["Config", "EnvironmentConfig", "TargetName"]

TargetName = Literal["lambda", "apprunner", "eks"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class EnvironmentConfig(_Frozen):
    """Where one environment (dev, prod) publishes."""

    repository: str = ""
    # ECR specifics, used when the repository is on ECR.
    region: str | None = None
    create_repository: bool = Field(default=False, alias="create-repository")


class Config(_Frozen):
    """Everything a build needs to know, after the cascade (see ``loader``)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, arbitrary_types_allowed=True
    )

    # The service as found on disk (crossdock.project): its shape, folders and declarations.
    project: ServiceProject
    project_root: Path = Field(alias="project-root")
    services_dir: str = Field(alias="services-dir")
    service: str
    platforms: tuple[Platform, ...]
    production_arch: str = Field(alias="production-arch")
    target: TargetName
    base: str | None = None
    # How a web service starts (crossdock.project.entrypoint): command > app > the only script.
    app: str | None = None
    server: str = "uvicorn"
    port: int = Field(ge=1, le=65535)
    health_path: str = Field(alias="health-path")
    lambda_handler: str = Field(alias="lambda-handler")
    command: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    refuse_dirty: bool = Field(alias="refuse-dirty")
    bytecode: bool = True
    # The host interpreter that compiles bytecode (None: found, see resolve.bytecode).
    bytecode_python: str | None = Field(default=None, alias="bytecode-python")
    # None: the seed's tag scheme (crossdock.publish.tags.DEFAULT_TEMPLATES).
    tag_templates: tuple[str, ...] | None = Field(default=None, alias="tag-templates")
    registry_mirrors: dict[str, str] = Field(default_factory=dict, alias="registry-mirrors")
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    repository: str | None = None
    cache_dir: Path = Field(alias="cache-dir")

    @field_validator("platforms", mode="before")
    @classmethod
    def _parse_platforms(cls, value: object) -> tuple[Platform, ...]:
        if isinstance(value, list | tuple) and all(isinstance(v, Platform) for v in value):
            return tuple(value)
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            return parse_platforms(value)
        raise ValueError(
            "platforms must be a string like 'linux/arm64,linux/amd64' or a list of such "
            f"strings, not {value!r}"
        )

    @field_validator("health_path")
    @classmethod
    def _health_path_is_absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("health-path must start with '/'")
        return value

    @property
    def service_dir(self) -> Path:
        return self.project.service_dir

    def environment(self, name: str) -> EnvironmentConfig:
        from crossdock.errors import ConfigError

        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments)) or "none"
            raise ConfigError(
                f"unknown environment {name!r} (configured: {known})",
                hint="add [environments.NAME] with a repository to crossdock.toml",
            ) from None
