"""One ``pyproject.toml``, read once: the facts crossdock needs from it, in uv's terms."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossdock.errors import ConfigError

__all__ = ["PYPROJECT", "PyProject", "read_pyproject", "read_toml"]

PYPROJECT = "pyproject.toml"


@dataclass(frozen=True)
class PyProject:
    """A parsed ``pyproject.toml`` and the folder that holds it."""

    path: Path
    data: Mapping[str, Any]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def _table(self, *keys: str) -> Mapping[str, Any]:
        """The table at ``keys`` (``"tool", "uv"``); empty when absent or not a table (a
        hand-edited file may hold ``project = "api"``)."""
        table: object = self.data
        for key in keys:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        return table if isinstance(table, dict) else {}

    @property
    def name(self) -> str | None:
        """``[project] name``, or None for a file without a project table (a virtual root)."""
        name = self._table("project").get("name")
        return str(name) if name else None

    @property
    def scripts(self) -> Mapping[str, str]:
        """``[project.scripts]``: console-script name -> ``module:function``."""
        return {str(k): str(v) for k, v in self._table("project", "scripts").items()}

    @property
    def crossdock(self) -> Mapping[str, Any]:
        """``[tool.crossdock]``: this project's crossdock settings."""
        return self._table("tool", "crossdock")

    @property
    def _uv(self) -> Mapping[str, Any]:
        return self._table("tool", "uv")

    @property
    def path_sources(self) -> tuple[Path, ...]:
        """The folders of ``[tool.uv.sources]`` path dependencies (``{ path = "../lib" }``)."""
        sources = self._uv.get("sources", {})
        folders = set()
        for source in sources.values() if isinstance(sources, dict) else ():
            path = source.get("path") if isinstance(source, dict) else None
            if isinstance(path, str) and (self.folder / path).is_dir():
                folders.add((self.folder / path).resolve())
        return tuple(sorted(folders))

    @property
    def workspace(self) -> Mapping[str, Any] | None:
        """``[tool.uv.workspace]`` when this file is a uv workspace root."""
        table = self._uv.get("workspace")
        return table if isinstance(table, dict) else None

    @property
    def packaged(self) -> bool:
        """Whether uv builds and installs this project as a package: ``tool.uv.package`` when
        set, else whether the file declares a ``[build-system]`` (uv's own rule)."""
        package = self._uv.get("package")
        if isinstance(package, bool):
            return package
        return "build-system" in self.data


def read_pyproject(folder: Path) -> PyProject | None:
    """``folder/pyproject.toml`` parsed, or None when there is none."""
    path = folder / PYPROJECT
    if not path.is_file():
        return None
    return PyProject(path, read_toml(path))


def read_toml(path: Path) -> dict[str, Any]:
    """``path`` parsed as TOML; a file that is not (not UTF-8, nested past Python's recursion
    limit) is a one-line :class:`ConfigError`."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as err:
        reason = str(err).splitlines()[0] if str(err) else "nested too deep"
        raise ConfigError(
            f"{path}: not valid TOML: {reason}", hint="fix the file (TOML, UTF-8)"
        ) from err
