"""Install a uv project's locked dependencies for a target platform with the uv binary.

Two steps, so that a builder can look up a cache before installing anything:

1. :func:`export_locked` checks the lock (missing or stale is a :class:`LockError`), exports it
   without dev groups and without editables (for one member with ``package`` in a workspace),
   and decides per package, from uv.lock, whether a wheel matches the target or only an sdist
   exists. Local projects (the project itself when it is a package, the workspace members and
   path dependencies it needs) are set apart: ``local`` builds them into wheels for the layer
   of the service's code; a project that is not a package is not exported at all (its files are
   copied by the layer writer). The result carries a cache key of the downloaded dependencies.
2. :func:`install` installs the wheels binary-only for the target (``--python-platform``,
   ``--python-version``, ``--only-binary :all:``), builds sdist-only packages on the host and
   keeps them only if they are pure Python, rewrites console-script shebangs for the image's
   Python and reads back what was installed.

Choices, and why:

- Hashes are kept: the export carries the lock's sha256 of every file and uv is run with
  ``--require-hashes``, so every wheel downloaded is checked against the lock. Wheels built here
  from sdists cannot match a lock hash; they are installed in a second, hash-free uv call from
  local files, after their sdist was checked against the lock's hash (see ``sdists``).
- No bytecode (``--no-compile``): uv would compile with the host's Python, whose ``.pyc`` files
  the image's Python (maybe another version) would ignore or reject.
- ``--link-mode hardlink``: the target folder's files are hard links to the unpacked wheels in
  uv's cache, not copies (on the example, uv's install took 1.8 s copying and 0.45 s linking,
  0.5 s of system time less). A link is the same file as the cache's: cleaning uv's cache
  leaves it whole, and crossdock never writes into an installed file (shebangs and RECORD
  files are replaced by new files, ``crossdock.cache.rewrite_file``; compileall writes new
  ``.pyc`` files), so uv's cache is never changed. uv writes its own files (RECORD, scripts) as
  new files, and copies where it cannot link (another filesystem).
- uv's configuration is honoured (no ``--no-config``): the project's ``[tool.uv]`` indexes and
  sources made the lock, and ``uv export --locked`` would call the lock stale without them; user
  settings like a corporate index URL are needed to download anything. The flags that decide
  correctness (binary-only, platform, Python version, no bytecode, links) are given explicitly,
  and explicit flags win over configuration.
- TLS: uv trusts ``SSL_CERT_FILE`` (and ``UV_NATIVE_TLS`` / ``--native-tls`` when the user sets
  them); we do not force ``--native-tls``, so uv behaves as it does for the user's own ``uv lock``.
- Interpreters: ``uv export --locked`` and ``uv build`` need a host Python that satisfies the
  project's ``requires-python`` (uv finds it, or ``UV_PYTHON`` / ``host_python`` names it);
  ``uv pip install --target`` only needs *an* interpreter, since platform and version are given,
  so it runs with crossdock's own, which always exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from crossdock import scratch
from crossdock.cache import Records
from crossdock.children import run_child
from crossdock.errors import LockError, ResolveError, ToolError
from crossdock.platform import Platform
from crossdock.resolve.lockcheck import RecordedExport, export_key, load_export, store_export
from crossdock.resolve.lockfile import (
    LOCK_FILE,
    Availability,
    LockedPackage,
    classify,
    lookup,
    read_lock,
)
from crossdock.resolve.provenance import remove_install_provenance
from crossdock.resolve.requirements import (
    ExportedRequirement,
    RequirementsExport,
    marker_environment,
    parse_export,
)
from crossdock.resolve.resolution import InstalledDistribution, Resolution, read_installed
from crossdock.resolve.sdists import build_pure_wheel, tail
from crossdock.resolve.shebangs import rewrite_shebangs
from crossdock.text import excerpt
from crossdock.wheeltags import WheelTarget, wheel_target

__all__ = [
    "LockedExport",
    "Uv",
    "check_lock",
    "export_locked",
    "install",
    "install_args",
    "resolve",
]

# Bump when what ends up in a target folder changes for the same inputs (flags, sdist policy).
_CACHE_SCHEMA = 3  # 2: RECORD entries of rewritten scripts updated; 3: no host paths in dist-info

# uv's own words when the lock does not match pyproject.toml (uv 0.13).
_STALE_MARKERS = ("needs to be updated", "--locked")
_NO_INTERPRETER_MARKERS = (
    "No interpreter found",
    "Failed to inspect Python interpreter",
    "python-build-standalone",
    "which is incompatible with the project's Python requirement",
)


class Uv:
    """The uv binary: the one shipped with the ``uv`` package unless another is given."""

    def __init__(self, binary: str | None = None) -> None:
        if binary is None:
            try:
                from uv import find_uv_bin

                binary = find_uv_bin()
            except (ImportError, FileNotFoundError) as err:
                raise ToolError(
                    "the uv binary was not found", hint="install crossdock with its `uv` dependency"
                ) from err
        self.binary = binary

    def run(
        self, args: Sequence[str], cwd: Path, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``uv ARGS`` in ``cwd``, capturing output; never raises on a non-zero exit."""
        env = {**os.environ, **(extra_env or {})}
        # Plain messages: they end up in our errors, and progress bars are noise in a pipe.
        env.update({"NO_COLOR": "1", "UV_NO_PROGRESS": "1"})
        try:
            return run_child(
                [self.binary, *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as err:
            raise ToolError(f"cannot run uv ({self.binary}): {err}") from err

    def run_combined(
        self, args: Sequence[str], cwd: Path, extra_env: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        """Run ``uv ARGS``; return the exit code and stdout+stderr (for error messages)."""
        completed = self.run(args, cwd, extra_env)
        return completed.returncode, f"{completed.stdout}{completed.stderr}"

    @cached_property
    def version(self) -> str:
        """``uv --version`` output, e.g. ``uv 0.13.9``: part of every cache key."""
        completed = self.run(["--version"], Path.cwd())
        if completed.returncode != 0:
            raise ToolError(
                f"`{self.binary} --version` failed (exit {completed.returncode}): "
                f"{excerpt(completed.stderr, 500, end=True)}",
                hint="check the uv binary (reinstall crossdock with its `uv` dependency)",
            )
        return completed.stdout.split("(")[0].strip()


@dataclass(frozen=True)
class LockedExport:
    """A checked lock, exported and split for one target; nothing installed yet."""

    project_dir: Path
    target: WheelTarget
    export: RequirementsExport  # the whole export (all markers)
    wheel_requirements: tuple[ExportedRequirement, ...]  # installed by uv, binary-only, hashed
    sdist_packages: tuple[LockedPackage, ...]  # built on the host, must come out pure
    uv_version: str
    # Project folders built into wheels on the host (see ``local``), sorted; not in cache_key.
    local_projects: tuple[Path, ...] = ()

    @property
    def requirements_text(self) -> str:
        """The export as installed: the requirements that apply to the target."""
        return self.export.render(self.wheel_requirements)

    @property
    def cache_key(self) -> str:
        """sha256 of everything that decides the installed tree: same key, same files."""
        material = {
            "schema": _CACHE_SCHEMA,
            "requirements": self.export.render(),
            "sdists": [f"{p.name}=={p.version}" for p in self.sdist_packages],
            "python_platform": self.target.uv_python_platform,
            "python_version": self.target.uv_python_version,
            "uv": self.uv_version,
        }
        encoded = json.dumps(material, sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()

    def installed_at(
        self,
        tree: Path,
        cache_key: str,
        read: Callable[[Path, frozenset[str]], tuple[InstalledDistribution, ...]] = read_installed,
    ) -> Resolution:
        """This export as installed in ``tree`` (its dist-info folders, read by ``read``);
        ``cache_key`` names the tree."""
        built = frozenset(package.name for package in self.sdist_packages)
        return Resolution(
            target=self.target,
            target_dir=tree,
            distributions=read(tree, built),
            cache_key=cache_key,
            uv_version=self.uv_version,
            requirements=self.requirements_text,
            local_projects=self.local_projects,
        )


def _uv_failure(output: str, *, project_dir: Path, action: str) -> ToolError | None:
    """A ToolError when uv failed for want of a host interpreter, else None."""
    if any(marker in output for marker in _NO_INTERPRETER_MARKERS):
        return ToolError(
            f"uv could not {action} in {project_dir}: it needs a host Python that satisfies the "
            f"project's requires-python: {tail(output)}",
            hint="install one (`uv python install 3.13`) or name it with UV_PYTHON=/path/to/python",
        )
    return None


def check_lock(
    project_dir: Path,
    *,
    uv: Uv | None = None,
    host_python: str | None = None,
    package: str | None = None,
    records: Records | None = None,
    lock_records: Records | None = None,
) -> RecordedExport:
    """uv's export of ``project_dir``'s checked lock (``uv export --locked``): the part of
    ``export_locked`` that needs no target platform, so a builder can ask for it while it reads
    the base image; with ``records``, the answer is recorded there, and ``export_locked`` with
    the same arguments then reads it instead of starting uv again."""
    return _checked_lock(
        project_dir,
        uv or Uv(),
        host_python=host_python,
        package=package,
        records=records,
        lock_records=lock_records,
    )[1]


def _checked_lock(
    project_dir: Path,
    uv: Uv,
    *,
    host_python: str | None,
    package: str | None,
    records: Records | None,
    lock_records: Records | None,
) -> tuple[dict[Any, LockedPackage], RecordedExport]:
    project_dir = project_dir.resolve()
    if not (project_dir / "pyproject.toml").is_file():
        raise LockError(
            f"{project_dir} has no pyproject.toml",
            hint="point crossdock at a uv project (a folder with pyproject.toml and uv.lock)",
        )
    # A missing lock is reported before uv says anything.
    packages = read_lock(project_dir, lock_records)
    args = [
        "export",
        "--quiet",  # errors only: they become our messages
        "--locked",  # fail if uv.lock does not match pyproject.toml, never update it
        "--no-dev",  # dev groups (pytest, ...) never go into an image
        "--no-editable",  # local projects as folders to build, never as editable installs
        "--no-header",
        "--no-annotate",
        "--format",
        "requirements-txt",
    ]
    if package is not None:
        args += ["--package", package]
    if host_python is not None:
        args += ["--python", host_python]
    return packages, _export(uv, args, project_dir, packages, records)


def export_locked(
    project_dir: Path,
    target: WheelTarget,
    *,
    uv: Uv | None = None,
    host_python: str | None = None,
    package: str | None = None,
    records: Records | None = None,
    lock_records: Records | None = None,
) -> LockedExport:
    """Check ``project_dir``'s lock and decide how each dependency gets installed for ``target``;
    ``package``: the workspace member to export (None: the project at ``project_dir``).
    ``records``: where uv's answers are kept by everything it read (``lockcheck``), so that an
    unchanged lock is not exported again; ``lock_records``: the lock's packages by its text
    (``read_lock``)."""
    project_dir = project_dir.resolve()
    packages, answer = _checked_lock(
        project_dir,
        uv or Uv(),
        host_python=host_python,
        package=package,
        records=records,
        lock_records=lock_records,
    )
    export = parse_export(answer.requirements)
    environment = marker_environment(target)
    applicable = tuple(req for req in export.requirements if req.applies_to(environment))
    locked = lookup(
        packages, [(req.name, req.version) for req in applicable], project_dir / LOCK_FILE
    )
    wheel_requirements: list[ExportedRequirement] = []
    sdist_packages: list[LockedPackage] = []
    for requirement, locked_package in zip(applicable, locked, strict=True):
        if classify(locked_package, target) is Availability.WHEEL:
            wheel_requirements.append(requirement)
        else:
            sdist_packages.append(locked_package)
    return LockedExport(
        project_dir=project_dir,
        target=target,
        export=export,
        wheel_requirements=tuple(wheel_requirements),
        sdist_packages=tuple(sdist_packages),
        uv_version=answer.uv_version,
        local_projects=_local_projects(export, environment, project_dir),
    )


def _export(
    uv: Uv,
    args: list[str],
    project_dir: Path,
    packages: Mapping[Any, LockedPackage],
    records: Records | None,
) -> RecordedExport:
    """uv's export of the lock, from ``records`` when nothing it reads has changed since a
    successful one (``lockcheck``), else from uv (recorded only when it succeeds, and only
    when nothing it read changed while it ran)."""
    key = export_key(uv.binary, args, project_dir, packages) if records is not None else None
    if records is not None and key is not None:
        recorded = load_export(records, key)
        if recorded is not None:
            return recorded
    completed = uv.run(args, project_dir)
    if completed.returncode != 0:
        output = completed.stderr.strip()
        lock_path = project_dir / LOCK_FILE
        if any(marker in output for marker in _STALE_MARKERS):
            raise LockError(
                f"{lock_path} is out of date with {project_dir / 'pyproject.toml'}: {tail(output)}",
                hint=f"run `uv lock` in {project_dir}, then build again",
            )
        raise _uv_failure(output, project_dir=project_dir, action="check the lock") or LockError(
            f"`uv export` failed for {lock_path}: {tail(output)}",
            hint=f"run `uv lock` in {project_dir} and fix what it reports",
        )
    answer = RecordedExport(completed.stdout, uv.version)
    unchanged = key is not None and export_key(uv.binary, args, project_dir, packages) == key
    if records is not None and key is not None and unchanged:
        store_export(records, key, answer)
    return answer


def _local_projects(
    export: RequirementsExport, environment: dict[str, str], project_dir: Path
) -> tuple[Path, ...]:
    folders: set[Path] = set()
    for requirement in export.local:
        if not requirement.applies_to(environment):
            continue
        folder = (project_dir / requirement.path).resolve()
        if not folder.is_dir():
            raise ResolveError(
                f"the lock of {project_dir} needs the local file {requirement.path}; crossdock "
                "builds local projects (folders), not archives",
                hint="depend on the project's folder, or publish the package to an index",
            )
        folders.add(folder)
    return tuple(sorted(folders))


def install_args(target: WheelTarget, target_dir: Path) -> list[str]:
    return [
        "pip",
        "install",
        "--target",
        str(target_dir),
        "--python",
        sys.executable,  # any interpreter will do: platform and version are given below
        "--python-platform",
        target.uv_python_platform,
        "--python-version",
        target.uv_python_version,
        "--only-binary",
        ":all:",  # never build for the host what is meant for the target (astral-sh/uv#16019)
        "--no-deps",  # the export is the complete, locked set
        "--link-mode",
        "hardlink",
        "--no-compile",
    ]


def _prepare_target_dir(target_dir: Path) -> None:
    if target_dir.exists() and any(target_dir.iterdir()):
        raise ResolveError(
            f"{target_dir} is not empty; installing into it would mix old and new packages",
            hint="give an empty or missing folder",
        )
    target_dir.mkdir(parents=True, exist_ok=True)


def install(
    locked: LockedExport,
    target_dir: Path,
    *,
    image_python: str | None = None,
    host_python: str | None = None,
    uv: Uv | None = None,
) -> Resolution:
    """Install ``locked`` into the empty folder ``target_dir`` for its target platform.

    With ``image_python`` (the interpreter's path inside the image), console scripts in
    ``target_dir/bin`` get that shebang.
    """
    uv = uv or Uv()
    target = locked.target
    _prepare_target_dir(target_dir)
    with scratch.temporary_directory(prefix="crossdock-resolve-") as work_dir:
        if locked.wheel_requirements:
            requirements_file = work_dir / "requirements.txt"
            requirements_file.write_text(locked.requirements_text, encoding="utf-8")
            args = [
                *install_args(target, target_dir),
                "--require-hashes",
                "-r",
                str(requirements_file),
            ]
            code, output = uv.run_combined(args, locked.project_dir)
            if code != 0:
                raise ResolveError(
                    f"uv could not install the locked wheels of {locked.project_dir} for "
                    f"{target.platform} ({target.uv_python_platform}, CPython "
                    f"{target.uv_python_version}): {tail(output)}",
                    hint="pin versions that publish wheels for this platform, pick another base "
                    "image, or use the buildx backend",
                )
        built = [
            build_pure_wheel(
                package,
                target,
                project_dir=locked.project_dir,
                work_dir=work_dir,
                run_uv=uv.run_combined,
                host_python=host_python,
            )
            for package in locked.sdist_packages
        ]
        if built:
            args = [*install_args(target, target_dir), "--no-index", *map(str, built)]
            code, output = uv.run_combined(args, locked.project_dir)
            if code != 0:
                raise ResolveError(
                    f"uv could not install the wheels built from sdists into {target_dir}: "
                    f"{tail(output)}",
                    hint="fix what uv reports and build again",
                )
    if image_python is not None:
        rewrite_shebangs(target_dir / "bin", image_python)
    built_names = frozenset(package.name for package in locked.sdist_packages)
    # Wheels built here were installed from a temporary folder: drop what records that path.
    remove_install_provenance(target_dir, built_names)
    resolution = locked.installed_at(target_dir, locked.cache_key)
    expected = {req.name for req in locked.wheel_requirements} | built_names
    installed = {dist.name for dist in resolution.distributions}
    if installed != expected:
        raise ResolveError(
            f"{target_dir} holds {sorted(installed - expected)} that were not asked for and lacks "
            f"{sorted(expected - installed)}",
            hint="report this: uv installed something other than the export",
        )
    return resolution


def resolve(
    project_dir: Path,
    platform: Platform,
    *,
    python_version: str,
    glibc: str | tuple[int, int],
    target_dir: Path,
    image_python: str | None = None,
    host_python: str | None = None,
    uv: Uv | None = None,
) -> Resolution:
    """Check the lock of ``project_dir`` and install its dependencies for ``platform``.

    ``python_version`` ("3.13") and ``glibc`` ("2.41") come from the base image's profile.
    """
    uv = uv or Uv()
    target = wheel_target(platform, glibc, python_version)
    locked = export_locked(project_dir, target, uv=uv, host_python=host_python)
    return install(locked, target_dir, image_python=image_python, host_python=host_python, uv=uv)
