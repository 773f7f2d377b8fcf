"""What ``uv export --locked`` answered for a lock, recorded so that an unchanged lock is not
checked again by starting uv (on a code-only rebuild the export and ``uv --version`` were two of
the child processes every platform waited for).

A record is keyed by everything uv reads to give that answer:

- the uv binary (its path, and the file's size, inode, device and modification time: an
  upgraded or replaced uv is another key) and the export's arguments;
- the bytes of every ``uv.lock``, ``pyproject.toml``, ``uv.toml`` and ``.python-version`` from
  the project's folder up to the root (where uv looks for the workspace and its settings), and
  of uv's user and system ``uv.toml``;
- every local source the lock names (the project itself, workspace members, path dependencies):
  the bytes of its ``pyproject.toml``, ``setup.py`` and ``setup.cfg`` (what its requirements are
  read from), or the identity of a local archive;
- the workspace's members as its globs find them now (a new member makes the lock stale);
- uv's environment (every ``UV_*`` variable, ``VIRTUAL_ENV``).

What is recorded is uv's output (the exported requirements) and its version, only after uv
exited 0: a stale lock is never recorded, so it is reported by uv itself every time. A record is
checksummed (crossdock.cache.Records): a damaged one is ignored and uv runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock.cache import Records
from crossdock.resolve.lockfile import LockedPackage

__all__ = ["RecordedExport", "export_key", "load_export", "store_export"]

# Files uv reads from the project's folder and every folder above it.
_PROJECT_FILES = ("uv.lock", "pyproject.toml", "uv.toml", ".python-version")
# Files a local source's requirements are read from.
_SOURCE_FILES = ("pyproject.toml", "setup.py", "setup.cfg")
_ENV = ("VIRTUAL_ENV",)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RecordedExport:
    """uv's answer: the export's text and the version of the uv that gave it."""

    requirements: str
    uv_version: str


def export_key(
    uv_binary: str,
    args: Sequence[str],
    project_dir: Path,
    packages: Mapping[Any, LockedPackage],
) -> str | None:
    """The key of the export ``uv_binary ARGS`` run in ``project_dir`` (whose lock holds
    ``packages``), or None when uv's binary cannot be identified (then uv runs)."""
    identity = _identity(Path(uv_binary))
    if identity is None:
        return None
    h = hashlib.sha256()
    for line in _key_lines(uv_binary, identity, args, project_dir.resolve(), packages):
        h.update(line.encode())
        h.update(b"\0")
    return h.hexdigest()


def load_export(records: Records, key: str) -> RecordedExport | None:
    return records.load(key, _parse)


def store_export(records: Records, key: str, export: RecordedExport) -> None:
    records.store(key, {"requirements": export.requirements, "uv_version": export.uv_version})


def _parse(payload: dict[str, Any]) -> RecordedExport:
    requirements, version = payload["requirements"], payload["uv_version"]
    if not isinstance(requirements, str) or not isinstance(version, str) or not version:
        raise TypeError("a uv-export record needs its text and uv's version")
    return RecordedExport(requirements, version)


def _key_lines(
    uv_binary: str,
    identity: str,
    args: Sequence[str],
    project_dir: Path,
    packages: Mapping[Any, LockedPackage],
) -> Iterator[str]:
    yield f"uv {uv_binary} {identity}"
    yield "args " + json.dumps(list(args))
    yield f"cwd {project_dir}"
    for name in sorted(os.environ):
        if name.startswith("UV_") or name in _ENV:
            yield f"env {name}={os.environ[name]}"
    for folder in (project_dir, *project_dir.parents):
        for name in _PROJECT_FILES:
            yield _file_line(folder / name)
    for config in _uv_config_files():
        yield _file_line(config)
    sources = {p.source_path for p in packages.values() if p.source_path is not None}
    for source in sorted(sources):
        yield from _source_lines(project_dir / source)
    yield from _workspace_lines(project_dir)


def _uv_config_files() -> list[Path]:
    """uv's user and system settings files (uv's docs: "Configuration files")."""
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    system = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    return [
        Path(home) / "uv" / "uv.toml",
        *(Path(d) / "uv" / "uv.toml" for d in system.split(":") if d),
        Path("/etc/uv/uv.toml"),
    ]


def _source_lines(path: Path) -> Iterator[str]:
    if path.is_dir():
        yield f"source {path}"
        for name in _SOURCE_FILES:
            yield _file_line(path / name)
    else:
        # A local archive: its identity (a changed file is another key).
        yield f"archive {path} {_identity(path)}"


def _workspace_lines(project_dir: Path) -> Iterator[str]:
    """The members the workspace's globs find now (the lock names the ones it was made with)."""
    try:
        data = tomllib.loads((project_dir / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, tomllib.TOMLDecodeError):
        return
    workspace: object = data
    for key in ("tool", "uv", "workspace"):  # any of them may be a string in a damaged file
        workspace = workspace.get(key, {}) if isinstance(workspace, dict) else {}
    if not isinstance(workspace, dict):
        return
    for field in ("members", "exclude"):
        patterns = workspace.get(field, [])
        if not isinstance(patterns, list):
            continue
        for pattern in sorted(str(p) for p in patterns):
            yield f"{field} {pattern}"
            try:
                found = sorted(project_dir.glob(pattern))
            except (OSError, ValueError):
                yield f"unreadable glob {pattern}"
                continue
            for folder in found:
                yield f"member {folder}"
                yield _file_line(folder / "pyproject.toml")


def _file_line(path: Path) -> str:
    try:
        h = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        return f"absent {path}"
    except OSError as err:
        # Unreadable (a folder, no permission): what uv would see differs; key on the reason.
        return f"unreadable {path} {type(err).__name__}"
    return f"file {path} {h.hexdigest()}"


def _identity(path: Path) -> str | None:
    """A file's size, inode, device and modification time: a rewritten or replaced file is
    another identity. Not its change time: uv installs its own binary into environments by hard
    link from a shared cache, and every new link changes the inode's change time."""
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size} {st.st_ino} {st.st_dev} {st.st_mtime_ns}"
