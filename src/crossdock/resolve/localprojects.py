"""Build the service's own packages (the project itself when it is a package, the workspace
members and path dependencies it needs) into wheels on the host, and install them for the target.

Each project is built by its own build backend (``uv build --wheel``, isolated, as uv would for
``uv sync --no-editable``) and installed like any dependency: no editable install, no link back
to this machine's source folder. The same rule as for sdists holds: only a pure-Python wheel
(``py3-none-any``) is the same file for every platform, so a project whose own code compiles a
C extension is refused, by name.

Builds are reproducible: ``SOURCE_DATE_EPOCH`` is the build's (at least 1980-01-01, which zip
archives need), and what the install records about local files is removed (``provenance``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

from crossdock.errors import ResolveError
from crossdock.resolve.provenance import remove_install_provenance
from crossdock.resolve.resolution import InstalledDistribution, read_installed
from crossdock.resolve.sdists import require_pure_wheel, single_wheel, tail, wheel_build_args
from crossdock.resolve.shebangs import rewrite_shebangs
from crossdock.resolve.uv import Uv, install_args
from crossdock.wheeltags import WheelTarget

__all__ = ["install_local_projects", "project_name"]

# The zip format cannot store times before 1980-01-01 (build backends fail on SOURCE_DATE_EPOCH=0).
_ZIP_EPOCH = 315532800
_NATIVE_HINT = (
    "crossdock installs a project's own code only as a pure-Python wheel (py3-none-any): move "
    "the native code into a package that publishes manylinux wheels for every platform, or "
    "use the buildx backend (--backend buildx)"
)


def project_name(folder: Path) -> str:
    """The ``[project] name`` of the project in ``folder`` (its folder name if unreadable)."""
    try:
        with (folder / "pyproject.toml").open("rb") as handle:
            project = tomllib.load(handle).get("project")
        name = project.get("name") if isinstance(project, dict) else None
    except (OSError, UnicodeDecodeError, RecursionError, tomllib.TOMLDecodeError):
        name = None
    return str(name) if name else folder.name


def install_local_projects(
    projects: Sequence[Path],
    target: WheelTarget,
    target_dir: Path,
    *,
    lock_dir: Path,
    work_dir: Path,
    image_python: str,
    source_date_epoch: int,
    host_python: str | None = None,
    uv: Uv | None = None,
) -> tuple[InstalledDistribution, ...]:
    """Build each project folder in ``projects`` into a pure wheel and install them all into the
    empty folder ``target_dir`` for ``target``; console scripts get ``image_python``."""
    uv = uv or Uv()
    epoch = {"SOURCE_DATE_EPOCH": str(max(source_date_epoch, _ZIP_EPOCH))}
    wheels: list[Path] = []
    names: list[str] = []
    for index, folder in enumerate(projects):
        name = project_name(folder)
        what = f"the project {name} ({folder})"
        out_dir = work_dir / f"wheel-{index}"
        args = wheel_build_args(folder, out_dir, host_python)
        code, output = uv.run_combined(args, lock_dir, epoch)
        if code != 0:
            raise ResolveError(
                f"building {what} into a wheel failed (a project with native code needs a "
                f"compiler, and crossdock would refuse its wheel anyway): {tail(output)}",
                hint=_NATIVE_HINT,
            )
        wheel = single_wheel(out_dir, what, hint=_NATIVE_HINT)
        wheels.append(
            require_pure_wheel(
                wheel,
                what=what,
                native=f"{what} is not pure Python: its own code contains native code (a C "
                f"extension), which would be compiled for this machine, not for {target.platform}",
                target=target,
                hint=_NATIVE_HINT,
            )
        )
        names.append(name)
    target_dir.mkdir(parents=True, exist_ok=True)
    args = [*install_args(target, target_dir), "--no-index", *map(str, wheels)]
    code, output = uv.run_combined(args, lock_dir)
    if code != 0:
        raise ResolveError(
            f"uv could not install the wheels of {', '.join(names)} into {target_dir}: "
            f"{tail(output)}",
            hint="fix what uv reports and build again",
        )
    rewrite_shebangs(target_dir / "bin", image_python)
    remove_install_provenance(target_dir, names)
    # uv's lock file for the folder: the dependency layer has its own; one in each is noise.
    (target_dir / ".lock").unlink(missing_ok=True)
    return read_installed(target_dir, frozenset())
