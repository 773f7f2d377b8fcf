"""Configuration: one cascade, resolved once into frozen values (see ``loader``)."""

from crossdock.config.loader import (
    MachineSettings,
    default_cache_dir,
    default_settings,
    load_config,
    load_config_with_sources,
    machine_settings,
)
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
]
