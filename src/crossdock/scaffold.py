"""``crossdock init``: write a new project from the templates shipped in the package.

Two layouts (``crossdock.project``'s shapes):

* ``seed`` (``crossdock/templates/project``): the seed's layout, the example project's files
  (``example/``); a unit test renders them with service ``api`` and compares them byte for byte
  with ``example/``, so the two cannot drift;
* ``single`` (``crossdock/templates/single``): one uv project that is the service, as
  ``uv init`` would write it plus the one ``[tool.crossdock]`` line that says how it starts.

Rendering rules, all in this module:

* ``backend/service/`` becomes ``backend/<service>/``; files ending in ``.tmpl`` lose the suffix
  and get ``{{service}}`` replaced (they are service-specific: app, pyproject);
* ``dot-NAME`` becomes ``.NAME`` (dotfiles are easy to lose in packaging);
* in the shared files, the service defaults (``SERVICE ?= api``, ``ARG SERVICE_FOLDER=api``)
  name the new service.

Existing files are never overwritten: ``init`` refuses and lists them.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from crossdock.errors import ConfigError

__all__ = ["EXAMPLE_SERVICE", "LAYOUTS", "ScaffoldFile", "render_project", "write_project"]

EXAMPLE_SERVICE = "api"
# Layout name -> template folder under crossdock/templates.
LAYOUTS = {"seed": "project", "single": "single"}
_SERVICE_DIR = "backend/service"
_SERVICE_DEFAULTS = ("SERVICE ?= {}", "ARG SERVICE_FOLDER={}")
_EXECUTABLE = frozenset({"scripts/docker-push.sh"})
# A service folder name is also a build argument and a path segment: keep it plain.
_SERVICE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class ScaffoldFile:
    path: PurePosixPath  # relative to the project root
    content: bytes
    executable: bool = False


def render_project(service: str = EXAMPLE_SERVICE, layout: str = "seed") -> list[ScaffoldFile]:
    """Every file of a new ``layout`` project for ``service``, in path order (pure: no writes)."""
    if layout not in LAYOUTS:
        raise ConfigError(
            f"unknown layout {layout!r}", hint=f"choose from {', '.join(sorted(LAYOUTS))}"
        )
    if not service or not set(service) <= _SERVICE_CHARS or service[0] in "-_":
        raise ConfigError(
            f"service name {service!r} is not usable as a folder and build argument",
            hint="use lowercase letters, digits, '-' and '_', starting with a letter or digit",
        )
    root = resources.files("crossdock.templates").joinpath(LAYOUTS[layout])
    files = [_render(rel, node.read_bytes(), service) for rel, node in _walk(root, PurePosixPath())]
    return sorted(files, key=lambda f: str(f.path))


def write_project(dest: Path, service: str = EXAMPLE_SERVICE, layout: str = "seed") -> list[Path]:
    """Write the project into ``dest`` (created if missing); refuse to overwrite anything."""
    files = render_project(service, layout)
    existing = [str(f.path) for f in files if (dest / f.path).exists()]
    if existing:
        raise ConfigError(
            f"{dest} already has {', '.join(existing)}",
            hint="run crossdock init in an empty folder (or remove those files)",
        )
    written: list[Path] = []
    for item in files:
        target = dest / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.content)
        if item.executable:
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(target)
    return written


def _walk(node: Traversable, rel: PurePosixPath) -> list[tuple[PurePosixPath, Traversable]]:
    out: list[tuple[PurePosixPath, Traversable]] = []
    for child in node.iterdir():
        if child.name in ("__pycache__", "__init__.py"):
            continue
        if child.is_dir():
            out += _walk(child, rel / child.name)
        else:
            out.append((rel / child.name, child))
    return out


def _render(rel: PurePosixPath, content: bytes, service: str) -> ScaffoldFile:
    text_path = str(rel)
    if text_path.startswith(_SERVICE_DIR + "/"):
        text_path = f"backend/{service}/" + text_path[len(_SERVICE_DIR) + 1 :]
    parts = [
        "." + p.removeprefix("dot-") if p.startswith("dot-") else p for p in text_path.split("/")
    ]
    path = PurePosixPath(*parts)
    if path.suffix == ".tmpl":
        path = path.with_suffix("")
        content = content.replace(b"{{service}}", service.encode())
    else:
        for pattern in _SERVICE_DEFAULTS:
            content = content.replace(
                pattern.format(EXAMPLE_SERVICE).encode(), pattern.format(service).encode()
            )
    return ScaffoldFile(path, content, executable=str(rel) in _EXECUTABLE)
