"""Installed dependency trees, cached by content: same lock, platform and Python, same tree.

Layout: ``CACHE/<key>/`` is an installed tree (what ``uv pip install --target`` wrote, shebangs
rewritten), nothing else, so it can be packed into a layer as it is. A tree is installed into a
temporary sibling folder and renamed into place when complete, so a reader never sees half a tree
and two builds installing the same key at once are safe: the first rename wins, the other build
drops its copy and uses the winner's.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from packaging.utils import canonicalize_name

from crossdock import scratch as scratch_paths
from crossdock.cache import Records
from crossdock.image.document import checked
from crossdock.platform import Platform
from crossdock.progress import NO_PROGRESS, Progress, step
from crossdock.resolve.bytecode import compile_bytecode, forget_tree, move_tree
from crossdock.resolve.resolution import InstalledDistribution, Resolution, read_installed
from crossdock.resolve.uv import LockedExport, Uv, export_locked, install
from crossdock.wheeltags import wheel_target

__all__ = ["OnInstalled", "install_dependencies"]


class OnInstalled(Protocol):
    """Told that a dependency tree is there, and whether it was installed now (or cached)."""

    def __call__(self, *, installed_now: bool) -> object: ...


def _tree_key(locked: LockedExport, python_path: str, bytecode: bool) -> str:
    # The shebangs written into bin/ depend on the image's interpreter path; the tree holds
    # bytecode or not (its version is the target's Python, already in the lock's cache key).
    text = f"{locked.cache_key}\0{python_path}\0bytecode={bytecode}"
    return hashlib.sha256(text.encode()).hexdigest()


def install_dependencies(
    *,
    project_dir: Path,
    platform: Platform,
    python_version: str,
    glibc_version: str,
    python_path: str,
    cache_dir: Path,
    host_python: str | None = None,
    uv: Uv | None = None,
    bytecode_python: str | None = None,
    image_dir: str = "/",
    package: str | None = None,
    bytecode_cache: Path | None = None,
    export_records: Records | None = None,
    tree_records: Records | None = None,
    lock_records: Records | None = None,
    progress: Progress = NO_PROGRESS,
    on_installed: OnInstalled | None = None,
) -> Resolution:
    """Check the lock and return the tree of its dependencies for ``platform``, from the cache
    when an identical tree exists. The lock is always checked, even on a cache hit.
    With ``bytecode_python`` (a host interpreter of the image's Python version) the tree also
    holds bytecode, compiled as if it lived at ``image_dir`` (each file's pyc reused from
    ``bytecode_cache`` when the same source was compiled before). ``package``: the workspace
    member whose dependencies these are (None: the project at ``project_dir``).
    ``export_records``: uv's answers about unchanged locks (``export_locked``);
    ``tree_records``: what each cached tree's dist-info folders said when it was installed;
    ``lock_records``: the lock's packages by its text (``read_lock``). The install and the
    bytecode are steps of ``progress``. ``on_installed`` is told once the tree is installed or
    found in the cache, before its bytecode is compiled: a caller starts there what can run
    beside the compile, whose work is done by other processes."""
    uv = uv or Uv()
    target = wheel_target(platform, glibc_version, python_version)
    with step(progress, platform, "install wheels") as installing:
        locked = export_locked(
            project_dir,
            target,
            uv=uv,
            host_python=host_python,
            package=package,
            records=export_records,
            lock_records=lock_records,
        )
        key = _tree_key(locked, python_path, bytecode_python is not None)
        tree = cache_dir / key
        if tree.is_dir():
            resolution = locked.installed_at(tree, key, _reader(tree_records, key))
            installing.describe(f"{_summary(resolution)} (cached)")
            if on_installed is not None:
                on_installed(installed_now=False)
            return resolution
        cache_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=cache_dir))
        scratch_paths.register(scratch)  # removed by an interrupt too
        try:
            installed = install(
                locked, scratch / "tree", image_python=python_path, host_python=host_python, uv=uv
            )
            installing.describe(_summary(installed))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    try:
        if on_installed is not None:
            on_installed(installed_now=True)
        if bytecode_python is not None:
            with step(progress, platform, "bytecode") as compiling:
                compile_bytecode(
                    scratch / "tree",
                    bytecode_python,
                    image_dir=image_dir,
                    cache_dir=bytecode_cache,
                    offer=True,
                )
                compiling.describe(f"for Python {python_version}")
        try:
            move_tree(scratch / "tree", tree)
        except OSError:
            if not tree.is_dir():  # not a lost race: a real failure
                raise
    finally:
        forget_tree(scratch / "tree")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch_paths.forget(scratch)
    return locked.installed_at(tree, key, _reader(tree_records, key))


def _reader(
    records: Records | None, key: str
) -> Callable[[Path, frozenset[str]], tuple[InstalledDistribution, ...]]:
    """``read_installed``, answered from ``records`` for the tree under ``key``: a tree is
    renamed into place whole and never changed, so what its dist-info folders said when first
    read (name, version, wheel tags, purity) is what they say now."""

    def read(tree: Path, built: frozenset[str]) -> tuple[InstalledDistribution, ...]:
        recorded = records.load(key, _distributions) if records is not None else None
        if recorded is None:
            recorded = read_installed(tree, frozenset())
            if records is not None:
                records.store(key, [[d.name, d.version, list(d.tags), d.pure] for d in recorded])
        return tuple(replace(d, built_from_sdist=d.name in built) for d in recorded)

    return read


def _distributions(rows: object) -> tuple[InstalledDistribution, ...]:
    """The distributions of an installed-trees record, each field of the type ``_reader``
    writes; a record of any other shape raises (``Records.load``: absent, the tree is read)."""
    what = "an installed-trees record"
    distributions = []
    for row in checked(rows, list, what):
        name, version, tags, pure = checked(row, list, what)
        if canonicalize_name(checked(name, str, what)) != name:
            raise ValueError(f"{what}: {name!r:.40} is not a normalized name")
        distributions.append(
            InstalledDistribution(
                canonicalize_name(name),
                checked(version, str, what),
                tuple(checked(tag, str, what) for tag in checked(tags, list, what)),
                pure=checked(pure, bool, what),
                built_from_sdist=False,
            )
        )
    return tuple(distributions)


def _summary(resolution: Resolution) -> str:
    return f"{len(resolution.distributions)} packages for {resolution.python_platform}"
