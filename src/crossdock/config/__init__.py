"""Configuration: one cascade, resolved once into frozen values (see ``loader``).

The model (``Config``: pydantic) is loaded on first use (PEP 562), so reading the cascade
(``settings_fingerprint``, ``machine_settings``) imports no pydantic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crossdock.config.loader import (
    MachineSettings,
    default_cache_dir,
    default_settings,
    load_config,
    load_config_with_sources,
    machine_settings,
    settings_fingerprint,
)

if TYPE_CHECKING:
    from crossdock.config.model import Config, EnvironmentConfig, TargetName

__all__ = [
    "Config",
    "EnvironmentConfig",
    "MachineSettings",
    "TargetName",
    "default_cache_dir",
    "default_settings",
    "load_config",
    "load_config_with_sources",
    "machine_settings",
    "settings_fingerprint",
]

_MODEL_NAMES = ("Config", "EnvironmentConfig", "TargetName")


def __getattr__(name: str) -> Any:  # noqa: ANN401 - the attribute's own type, known to mypy above
    if name in _MODEL_NAMES:
        from crossdock.config import model

        return getattr(model, name)
    raise AttributeError(f"module 'crossdock.config' has no attribute {name!r}")
