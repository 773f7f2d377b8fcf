"""Configuration: one cascade, resolved once into frozen values (see ``loader``)."""

from crossdock.config.loader import default_cache_dir, find_project_root, load_config
from crossdock.config.model import Config, EnvironmentConfig, TargetName

__all__ = [
    "Config",
    "EnvironmentConfig",
    "TargetName",
    "default_cache_dir",
    "find_project_root",
    "load_config",
]
