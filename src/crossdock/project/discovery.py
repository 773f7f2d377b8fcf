"""Find the service to build from the folder you stand in, the way uv finds its project.

The project's root is, in this order:

1. the nearest folder at or above the start holding ``crossdock.toml`` (project-wide settings);
2. the start itself when it holds the services folder (``backend/``) and no ``pyproject.toml``
   (the seed's layout without a crossdock.toml);
3. the uv workspace root that includes the nearest ``pyproject.toml`` at or above the start, or
   that project's own folder;
4. the start.

At the root, the shape decides how the service is chosen:

- **workspace** (the root's pyproject.toml has ``[tool.uv.workspace]``): ``--service`` /
  ``--package`` names a member by project name or folder name; without it, the member you stand
  in, else the root project; uv.lock is the workspace's;
- **seed** (a ``backend/`` folder): ``--service`` names ``backend/<service>/``, or the service
  folder you stand in; each service has its own uv.lock;
- **single** (a pyproject.toml with ``[project]``): that project is the service, named after it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

from crossdock.errors import ConfigError
from crossdock.project.model import Layout, ServiceProject
from crossdock.project.pyproject import PYPROJECT, PyProject, read_pyproject

__all__ = ["PROJECT_FILE", "discover_service", "find_project_root", "workspace_members"]

PROJECT_FILE = "crossdock.toml"


def find_project_root(start: Path, services_dir: str = "backend") -> Path:
    """The project's root for ``start`` (see the module's docstring)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    if (start / services_dir).is_dir() and not (start / PYPROJECT).is_file():
        return start
    nearest = _nearest_pyproject(start)
    if nearest is None:
        return start
    workspace = _workspace_root(nearest.folder)
    return workspace.folder if workspace is not None else nearest.folder


def discover_service(
    root: Path, *, start: Path, service: str | None, services_dir: str
) -> ServiceProject:
    """The service to build in the project at ``root``; ``start`` is where the user stands
    (it picks the service when none is named)."""
    root, start = root.resolve(), start.resolve()
    root_project = read_pyproject(root)
    if root_project is not None and root_project.workspace is not None:
        return _workspace_service(root_project, start, service)
    if (root / services_dir).is_dir() or root_project is None or root_project.name is None:
        return _seed_service(root, start, service, services_dir)
    return _single_service(root_project, service)


def workspace_members(root: PyProject) -> dict[Path, PyProject]:
    """The members of the workspace rooted at ``root`` with a ``[project]``, by folder (the root
    itself when it is a project): ``members`` globs less ``exclude`` globs, as uv reads them."""
    table = root.workspace or {}
    members: dict[Path, PyProject] = {}
    if root.name is not None:
        members[root.folder.resolve()] = root
    excluded = [str(p) for p in table.get("exclude", [])]
    for pattern in table.get("members", []):
        for folder in sorted(root.folder.glob(str(pattern))):
            relative = folder.relative_to(root.folder).as_posix()
            if not folder.is_dir() or any(fnmatch.fnmatch(relative, ex) for ex in excluded):
                continue
            project = read_pyproject(folder)
            if project is not None and project.name is not None:
                members[folder.resolve()] = project
    return members


# -- shapes ---------------------------------------------------------------------------------


def _single_service(project: PyProject, service: str | None) -> ServiceProject:
    # packaging is imported where names are compared: the seed's layout compares none, and a
    # build answered from its record discovers the project before anything else (issue 14).
    from packaging.utils import canonicalize_name

    name = project.name or project.folder.name
    if service is not None and canonicalize_name(service) not in {
        canonicalize_name(name),
        canonicalize_name(project.folder.name),
    }:
        raise ConfigError(
            f"{project.folder} is a single uv project ({name}): the project is the service, so "
            f"--service {service} names nothing here",
            hint="drop --service, or point -C at a seed layout (backend/<service>/) or a uv "
            "workspace",
        )
    return _service("single", project.folder, name, project.folder, project)


def _seed_service(
    root: Path, start: Path, service: str | None, services_dir: str
) -> ServiceProject:
    services = root / services_dir
    name = service or _folder_under(services, start)
    if not name:
        raise ConfigError(
            "no service given",
            hint=f"pass --service NAME (a folder under {services}), or set CROSSDOCK_SERVICE",
        )
    service_dir = services / name
    if not service_dir.is_dir():
        available = sorted(p.name for p in services.glob("*") if (p / PYPROJECT).is_file())
        raise ConfigError(
            f"service folder {service_dir} does not exist",
            hint=f"services found: {', '.join(available) or 'none'}; "
            "the service is a folder under services-dir holding pyproject.toml",
        )
    return _service("seed", root, name, service_dir, read_pyproject(service_dir))


def _workspace_service(root: PyProject, start: Path, service: str | None) -> ServiceProject:
    from packaging.utils import canonicalize_name

    members = workspace_members(root)
    names = ", ".join(sorted(str(p.name) for p in members.values())) or "none"
    chosen: PyProject | None
    if service is not None:
        wanted = canonicalize_name(service)
        chosen = next(
            (
                p
                for p in members.values()
                if canonicalize_name(str(p.name)) == wanted or p.folder.name == service
            ),
            None,
        )
        if chosen is None:
            raise ConfigError(
                f"the uv workspace at {root.folder} has no member named {service!r}",
                hint=f"its members: {names}",
            )
    else:
        chosen = _member_containing(members, start, root.folder)
        if chosen is None:
            raise ConfigError(
                f"no service given: {root.folder} is a uv workspace",
                hint=f"pass --service NAME (or --package NAME), one of: {names}; or run "
                "crossdock from the member's folder",
            )
    return _service(
        "workspace", root.folder, str(chosen.name), chosen.folder, chosen, members=members.values()
    )


# -- helpers --------------------------------------------------------------------------------


def _service(
    layout: Layout,
    root: Path,
    name: str,
    service_dir: Path,
    project: PyProject | None,
    *,
    members: Iterable[PyProject] = (),
) -> ServiceProject:
    """The service in ``service_dir``, as its pyproject.toml (``project``; None: it has none)
    describes it. A workspace member's lock is the root's, exported with ``--package NAME``;
    its code may come from any member."""
    in_workspace = layout == "workspace"
    return ServiceProject(
        layout=layout,
        root=root,
        name=name,
        service_dir=service_dir,
        lock_dir=root if in_workspace else service_dir,
        package=name if in_workspace else None,
        packaged=project.packaged if project is not None else False,
        scripts=project.scripts if project is not None else {},
        settings=project.crossdock if project is not None else {},
        source_dirs=_sources(service_dir, project, *members),
    )


def _sources(service_dir: Path, *projects: PyProject | None) -> tuple[Path, ...]:
    """``service_dir``, the folders of ``projects`` and their path dependencies, sorted."""
    folders = {service_dir.resolve()}
    for project in projects:
        if project is not None:
            folders.add(project.folder.resolve())
            folders.update(project.path_sources)
    return tuple(sorted(folders))


def _nearest_pyproject(start: Path) -> PyProject | None:
    for folder in (start, *start.parents):
        project = read_pyproject(folder)
        if project is not None:
            return project
    return None


def _workspace_root(folder: Path) -> PyProject | None:
    """The nearest workspace root at or above ``folder`` that includes it, like uv."""
    for candidate in (folder, *folder.parents):
        project = read_pyproject(candidate)
        if project is None or project.workspace is None:
            continue
        if candidate == folder or folder in workspace_members(project):
            return project
    return None


def _folder_under(parent: Path, start: Path) -> str | None:
    """The name of the folder directly under ``parent`` that ``start`` is in, if any."""
    try:
        relative = start.relative_to(parent.resolve())
    except ValueError:
        return None
    return relative.parts[0] if relative.parts else None


def _member_containing(members: dict[Path, PyProject], start: Path, root: Path) -> PyProject | None:
    """The deepest member folder holding ``start``; the root project only when standing at the
    root (or anywhere else outside a member)."""
    inside = [f for f in members if f != root and (start == f or f in start.parents)]
    if inside:
        return members[max(inside, key=lambda f: len(f.parts))]
    return members.get(root)
