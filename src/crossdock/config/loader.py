"""Load the configuration through one cascade, later sources winning:

1. crossdock's defaults (``defaults.toml`` beside this file),
2. ``crossdock.toml`` at the project root (project-wide: environments, mirrors, services-dir),
3. ``[tool.crossdock]`` in the service's ``pyproject.toml`` (per service: app, port, target...),
4. environment variables ``CROSSDOCK_*`` (CI),
5. command-line options.

Keys are written in kebab-case in files; environment variables are CROSSDOCK_ plus the key in
upper snake case (CROSSDOCK_PLATFORMS, CROSSDOCK_TARGET, CROSSDOCK_BASE, CROSSDOCK_REPOSITORY,
CROSSDOCK_SERVICE, CROSSDOCK_CACHE_DIR) and CROSSDOCK_REGISTRY_MIRRORS in the
``host=mirror,host=mirror`` form. Unknown keys are errors, with the file that holds them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crossdock.config.model import Config
from crossdock.errors import ConfigError
from crossdock.registry.reference import Mirrors

__all__ = ["PROJECT_FILE", "default_cache_dir", "find_project_root", "load_config"]

PROJECT_FILE = "crossdock.toml"

# Environment variables that map one-to-one onto a key.
_ENV_KEYS = {
    "CROSSDOCK_PLATFORMS": "platforms",
    "CROSSDOCK_TARGET": "target",
    "CROSSDOCK_BASE": "base",
    "CROSSDOCK_REPOSITORY": "repository",
    "CROSSDOCK_SERVICE": "service",
    "CROSSDOCK_CACHE_DIR": "cache-dir",
    "CROSSDOCK_PRODUCTION_ARCH": "production-arch",
}


def default_cache_dir() -> Path:
    """One cache folder for base blobs, profiles, installed dependencies and layers."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "crossdock"


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding crossdock.toml, else ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return start


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err


def _defaults() -> dict[str, Any]:
    text = resources.files("crossdock.config").joinpath("defaults.toml").read_text()
    return tomllib.loads(text)


def _merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge tables (environments, mirrors); anything else is replaced."""
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _check_keys(layer: Mapping[str, Any], allowed: set[str], source: str) -> None:
    unknown = sorted(set(layer) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: unknown crossdock setting(s): {', '.join(unknown)}",
            hint=f"known settings: {', '.join(sorted(allowed))}",
        )


def load_config(
    *,
    project_dir: Path | None = None,
    service: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Resolve the cascade into one frozen ``Config``; ``overrides`` are command-line values
    (None values are ignored, so unset options do not mask lower layers)."""
    env = os.environ if environ is None else environ
    root = find_project_root(project_dir or Path.cwd())
    merged = _defaults()
    allowed = {
        *merged.keys(),
        *("base", "command", "repository", "cache-dir", "service", "tag-templates"),
    }

    project_file = root / PROJECT_FILE
    if project_file.is_file():
        layer = _read_toml(project_file)
        _check_keys(layer, allowed, str(project_file))
        merged = _merge(merged, layer)

    env_layer: dict[str, Any] = {key: env[var] for var, key in _ENV_KEYS.items() if env.get(var)}
    if env.get("CROSSDOCK_REGISTRY_MIRRORS"):
        env_layer["registry-mirrors"] = dict(Mirrors.parse(env["CROSSDOCK_REGISTRY_MIRRORS"]).hosts)
    cli_layer = {k: v for k, v in (overrides or {}).items() if v is not None}

    service_name = (
        cli_layer.get("service") or service or env_layer.get("service") or merged.get("service")
    )
    if not service_name:
        raise ConfigError(
            "no service given",
            hint="pass --service NAME (a folder under "
            f"{root / str(merged['services-dir'])}), or set CROSSDOCK_SERVICE",
        )
    services_dir = str(cli_layer.get("services-dir") or merged["services-dir"])
    service_dir = root / services_dir / str(service_name)
    if not service_dir.is_dir():
        available = sorted(
            p.name for p in (root / services_dir).glob("*") if (p / "pyproject.toml").is_file()
        )
        raise ConfigError(
            f"service folder {service_dir} does not exist",
            hint=f"services found: {', '.join(available) or 'none'}; "
            "the service is a folder under services-dir holding pyproject.toml",
        )
    pyproject = service_dir / "pyproject.toml"
    if pyproject.is_file():
        tool = _read_toml(pyproject).get("tool", {}).get("crossdock", {})
        _check_keys(tool, allowed, f"{pyproject} [tool.crossdock]")
        merged = _merge(merged, tool)

    merged = _merge(merged, env_layer)
    merged = _merge(merged, cli_layer)
    merged["service"] = str(service_name)
    merged["project-root"] = root
    merged.setdefault("cache-dir", default_cache_dir())
    if not merged.get("cache-dir"):
        merged["cache-dir"] = default_cache_dir()
    try:
        return Config.model_validate(merged)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(
            f"invalid configuration for service {service_name!r}: {problems}"
        ) from err
