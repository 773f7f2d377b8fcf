"""Load the configuration through one cascade, later sources winning:

1. crossdock's defaults (``defaults.toml`` beside this file), then the defaults of the
   project's layout (the seed's services serve ``app.main:app`` unless they say otherwise),
2. ``crossdock.toml`` at the project root (project-wide: environments, mirrors, services-dir),
3. ``[tool.crossdock]`` in the service's ``pyproject.toml`` (per service: app, port, target...),
4. environment variables ``CROSSDOCK_*`` (CI),
5. command-line options.

The project root and the service are found by ``crossdock.project`` (single uv project, the
seed's backend/<service>/ layout, or a uv workspace), from the folder given or the current one.

Keys are written in kebab-case in files; environment variables are CROSSDOCK_ plus the key in
upper snake case (CROSSDOCK_PLATFORMS, CROSSDOCK_TARGET, CROSSDOCK_BASE, CROSSDOCK_REPOSITORY,
CROSSDOCK_SERVICE, CROSSDOCK_CACHE_DIR, CROSSDOCK_BYTECODE_PYTHON) and CROSSDOCK_REGISTRY_MIRRORS
in the ``host=mirror,host=mirror`` form. This module is the only reader of those variables;
commands without a project get theirs from ``machine_settings``. Unknown keys are errors, with
the file that holds them.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossdock.errors import ConfigError
from crossdock.project import PROJECT_FILE, discover_service, find_project_root, read_toml
from crossdock.registry.reference import Mirrors

if TYPE_CHECKING:
    from crossdock.config.model import Config

# pydantic (the Config model) is imported where the settings are validated: a build answered
# from the record of the last one compares the settings' fingerprint instead (issue 14).

__all__ = [
    "ENV_VARIABLES",
    "ConfigSources",
    "MachineSettings",
    "default_cache_dir",
    "default_settings",
    "load_config",
    "load_config_with_sources",
    "machine_settings",
    "settings_fingerprint",
]

# Settings that depend on the project's layout, between crossdock's defaults and the project's
# files: the seed's services (and its Dockerfiles) serve the ASGI app app/main.py:app.
_LAYOUT_DEFAULTS: dict[str, dict[str, Any]] = {"seed": {"app": "app.main:app"}}

# Environment variables that map one-to-one onto a key.
_ENV_KEYS = {
    "CROSSDOCK_PLATFORMS": "platforms",
    "CROSSDOCK_TARGET": "target",
    "CROSSDOCK_BASE": "base",
    "CROSSDOCK_REPOSITORY": "repository",
    "CROSSDOCK_SERVICE": "service",
    "CROSSDOCK_CACHE_DIR": "cache-dir",
    "CROSSDOCK_PRODUCTION_ARCH": "production-arch",
    "CROSSDOCK_BYTECODE_PYTHON": "bytecode-python",
}
_MIRRORS_ENV = "CROSSDOCK_REGISTRY_MIRRORS"


# The variable that sets each key (CROSSDOCK_REGISTRY_MIRRORS has its own host=mirror form).
ENV_VARIABLES = {
    **{key: var for var, key in _ENV_KEYS.items()},
    "registry-mirrors": _MIRRORS_ENV,
}

# Where each resolved value came from, by dotted key ("environments.dev.repository"): "default",
# the file that set it (relative to the project root), "env CROSSDOCK_X" or "option --x".
ConfigSources = dict[str, str]


def default_cache_dir() -> Path:
    """One cache folder for base blobs, profiles, installed dependencies and layers."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "crossdock"


@dataclass(frozen=True)
class MachineSettings:
    """The settings of commands that read no project (``crossdock verify IMAGE``, ``cache``, a
    doctor outside a project): from the environment, as ``load_config`` reads them."""

    cache_dir: Path
    registry_mirrors: Mirrors


def machine_settings(environ: Mapping[str, str] | None = None) -> MachineSettings:
    env = os.environ if environ is None else environ
    cache_dir = env.get("CROSSDOCK_CACHE_DIR")
    return MachineSettings(
        Path(cache_dir) if cache_dir else default_cache_dir(),
        Mirrors.parse(env.get(_MIRRORS_ENV, "")),
    )


def default_settings() -> dict[str, Any]:
    """crossdock's own defaults (defaults.toml), for commands run outside any project."""
    return _defaults()


def _defaults() -> dict[str, Any]:
    # Beside this module (crossdock runs from its files: backends.lastbuild hashes them), read
    # without importlib.resources, whose file readers import zipfile (~10-30 ms of every
    # build's start-up, issue 14).
    text = Path(__file__).with_name("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _record(sources: ConfigSources, layer: Mapping[str, Any], label: str, prefix: str = "") -> None:
    """Note ``label`` as the source of every value ``layer`` sets (tables: of each entry)."""
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            # A table replaces nothing wholesale: its entries merge, so each has its source.
            sources.pop(dotted, None)
            _record(sources, value, label, f"{dotted}.")
        elif not (isinstance(value, Mapping) and dotted in sources):
            sources[dotted] = label


def _merge(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge tables (environments, mirrors); anything else is replaced."""
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


# A service is a folder name, not a path: it names images, repositories and cache keys too.
_FOLDER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check_folder_name(name: str, what: str, where: str) -> None:
    if not _FOLDER_NAME_RE.match(name) or ".." in name:
        raise ConfigError(
            f"{what} {name!r} is not a folder name",
            hint=f"{where} names one folder under services-dir (letters, digits, '.', '_', "
            "'-'), e.g. --service api",
        )


def _check_relative(path: str, what: str) -> None:
    """A folder of the project: relative, and not climbing out of it."""
    parts = Path(path).parts
    if Path(path).is_absolute() or ".." in parts or not parts:
        raise ConfigError(
            f"{what} {path!r} leaves the project",
            hint=f"{what} is a folder inside the project, e.g. backend",
        )


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
    return load_config_with_sources(
        project_dir=project_dir, service=service, overrides=overrides, environ=environ
    )[0]


def load_config_with_sources(
    *,
    project_dir: Path | None = None,
    service: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Config, ConfigSources]:
    """``load_config``, and where every value came from (``crossdock config``)."""
    from pydantic import ValidationError

    from crossdock.config.model import Config

    merged, sources = _cascade(
        project_dir=project_dir, service=service, overrides=overrides, environ=environ
    )
    project = merged["project"]
    try:
        return Config.model_validate(merged), sources
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(
            f"invalid configuration for service {project.name!r}: {problems}"
        ) from err


def settings_fingerprint(
    *,
    project_dir: Path | None = None,
    service: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """A hash of everything ``load_config`` would validate for these arguments (every layer of
    the cascade, read now: defaults, the project's files, the environment, the options), without
    validating it: equal fingerprints mean an equal ``Config``, with crossdock's code unchanged."""
    merged, _ = _cascade(
        project_dir=project_dir, service=service, overrides=overrides, environ=environ
    )
    return hashlib.sha256(repr(sorted(merged.items())).encode()).hexdigest()


def _cascade(
    *,
    project_dir: Path | None,
    service: str | None,
    overrides: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None,
) -> tuple[dict[str, Any], ConfigSources]:
    """The merged layers of the cascade, not yet validated, and the source of every value."""
    env = os.environ if environ is None else environ
    start = (project_dir or Path.cwd()).resolve()
    cli_layer = {k: v for k, v in (overrides or {}).items() if v is not None}
    merged = _defaults()
    sources: ConfigSources = {}
    _record(sources, merged, "default")
    allowed = {
        *merged.keys(),
        *("app", "base", "command", "repository", "cache-dir", "service", "tag-templates"),
        "bytecode-python",
    }
    services_dir = str(cli_layer.get("services-dir") or merged["services-dir"])
    root = find_project_root(start, services_dir)

    project_file = root / PROJECT_FILE
    project_layer: dict[str, Any] = {}
    if project_file.is_file():
        project_layer = read_toml(project_file)
        _check_keys(project_layer, allowed, str(project_file))

    env_layer: dict[str, Any] = {key: env[var] for var, key in _ENV_KEYS.items() if env.get(var)}
    if env.get(_MIRRORS_ENV):
        env_layer["registry-mirrors"] = dict(Mirrors.parse(env[_MIRRORS_ENV]).hosts)

    service_name = (
        cli_layer.get("service")
        or service
        or env_layer.get("service")
        or project_layer.get("service")
    )
    services_dir = str(
        cli_layer.get("services-dir") or project_layer.get("services-dir") or services_dir
    )
    if service_name:
        _check_folder_name(str(service_name), "service", "--service / CROSSDOCK_SERVICE")
    _check_relative(services_dir, "services-dir")
    project = discover_service(
        root,
        start=start,
        service=str(service_name) if service_name else None,
        services_dir=services_dir,
    )
    layout_defaults = _LAYOUT_DEFAULTS.get(project.layout, {})
    merged = _merge(merged, layout_defaults)
    _record(sources, layout_defaults, f"default for the {project.layout} layout")
    merged = _merge(merged, project_layer)
    _record(sources, project_layer, PROJECT_FILE)
    service_file = project.service_dir / "pyproject.toml"
    _check_keys(project.settings, allowed, f"{service_file} [tool.crossdock]")
    merged = _merge(merged, project.settings)
    _record(sources, project.settings, f"{_relative(service_file, root)} [tool.crossdock]")

    merged = _merge(_merge(merged, env_layer), cli_layer)
    _record_overrides(sources, env_layer, cli_layer, service_option=service)
    merged["service"] = project.name
    merged["project"] = project
    merged["services-dir"] = services_dir
    merged["project-root"] = project.root
    sources["project-root"] = "--project, or the folder above it holding crossdock.toml"
    if not merged.get("cache-dir"):
        merged["cache-dir"] = default_cache_dir()
        sources["cache-dir"] = "default ($XDG_CACHE_HOME or ~/.cache)/crossdock"
    return merged, sources


def _record_overrides(
    sources: ConfigSources,
    env_layer: Mapping[str, Any],
    cli_layer: Mapping[str, Any],
    *,
    service_option: str | None,
) -> None:
    """The sources of what variables and options set (they win over every file)."""
    for key, value in env_layer.items():
        _record(sources, {key: value}, f"env {ENV_VARIABLES[key]}")
    for key, value in cli_layer.items():
        option = "platform" if key == "platforms" else key
        _record(sources, {key: value}, f"option --{option}")
    if "service" not in cli_layer and service_option:
        sources["service"] = "option --service"
    elif "service" not in sources:
        sources["service"] = "found from --project"


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
