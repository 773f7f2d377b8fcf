"""What the doctor checks, from the project's configuration (or crossdock's defaults)."""

from __future__ import annotations

from pathlib import Path

from crossdock.config import load_config, machine_settings
from crossdock.doctor.checks import DoctorInput
from crossdock.errors import ConfigError
from crossdock.platform import SUPPORTED
from crossdock.registry.reference import Mirrors
from crossdock.targets import TARGETS

__all__ = ["doctor_input"]


def doctor_input(project: Path, service: str | None, *, check_network: bool = True) -> DoctorInput:
    """Platforms, bases, mirrors and repositories to check for ``project``.

    Without a service (or a project), crossdock's defaults apply: both platforms, every target's
    default base, mirrors from CROSSDOCK_REGISTRY_MIRRORS.
    """
    bases = {name: spec.default_base for name, spec in TARGETS.items()}
    try:
        config = load_config(project_dir=project, service=service or _first_service(project))
    except ConfigError:
        mirrors = machine_settings().registry_mirrors
        return DoctorInput(SUPPORTED, bases, mirrors, {}, check_network)
    if config.base:
        bases[config.target] = config.base
    return DoctorInput(
        config.platforms,
        bases,
        Mirrors(config.registry_mirrors),
        {name: env.repository for name, env in config.environments.items()},
        check_network,
    )


def _first_service(project: Path) -> str | None:
    backend = project / "backend"
    if not backend.is_dir():
        return None
    services = sorted(p.parent.name for p in backend.glob("*/pyproject.toml"))
    return services[0] if services else None
