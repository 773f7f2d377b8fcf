"""The service crossdock builds, as found on disk: which shape, which folders, what it declares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["Layout", "ServiceProject"]

# single: one uv project at the root is the service (`uv init`);
# seed: one folder per service under services-dir (backend/<service>/), each its own uv project;
# workspace: a uv workspace, uv.lock at its root, the service one of its members.
Layout = Literal["single", "seed", "workspace"]


@dataclass(frozen=True)
class ServiceProject:
    layout: Layout
    # The project's root: where crossdock.toml lives (or would), the top of what was found.
    root: Path
    # The service's name: the seed's folder name, else the project's name.
    name: str
    # The folder of the service's pyproject.toml (its files are copied when not packaged).
    service_dir: Path
    # The folder holding uv.lock: the workspace root, else the service's folder.
    lock_dir: Path
    # `uv export --package NAME` for a workspace member; None when the lock is the service's own.
    package: str | None
    # Built into a wheel and installed (uv's rule: tool.uv.package, else a [build-system]);
    # otherwise the service's files are copied as they are.
    packaged: bool
    # [project.scripts] of the service: console-script name -> "module:function".
    scripts: Mapping[str, str] = field(default_factory=dict)
    # [tool.crossdock] of the service's pyproject.toml.
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Every folder the image's own code may be built from: the service, every workspace member
    # (those it needs are among them) and its path dependencies. A change in any is a change.
    source_dirs: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "root": str(self.root),
            "name": self.name,
            "service_dir": str(self.service_dir),
            "lock_dir": str(self.lock_dir),
            "package": self.package,
            "packaged": self.packaged,
            "scripts": dict(self.scripts),
            "source_dirs": [str(folder) for folder in self.source_dirs],
        }

    def to_record(self) -> dict[str, Any]:
        """Every field, as JSON (``to_json`` leaves the settings out); see ``from_record``."""
        # [key, value] pairs, in their order (a record's JSON objects may come back sorted).
        return {
            **self.to_json(),
            "scripts": [[k, v] for k, v in self.scripts.items()],
            "settings": [[k, v] for k, v in self.settings.items()],
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> ServiceProject:
        """The project ``to_record`` wrote. TOML values JSON cannot hold (dates) come back
        otherwise: callers compare the ``repr`` with the original's (``BuildPlan``)."""
        return cls(
            layout=data["layout"],
            root=Path(data["root"]),
            name=str(data["name"]),
            service_dir=Path(data["service_dir"]),
            lock_dir=Path(data["lock_dir"]),
            package=data["package"],
            packaged=bool(data["packaged"]),
            scripts=dict(data["scripts"]),
            settings=dict(data["settings"]),
            source_dirs=tuple(Path(folder) for folder in data["source_dirs"]),
        )
