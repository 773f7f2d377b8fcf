"""The service to build: its shape on disk (single project, seed layout, uv workspace), whether it
is a package, and how its image starts. Read from files only; nothing here runs uv or builds."""

from __future__ import annotations

from crossdock.project.discovery import (
    PROJECT_FILE,
    discover_service,
    find_project_root,
    workspace_members,
)
from crossdock.project.entrypoint import (
    SERVERS,
    AppServer,
    Command,
    ConsoleScript,
    Entrypoint,
    ServedApp,
    choose_entrypoint,
)
from crossdock.project.model import Layout, ServiceProject
from crossdock.project.pyproject import PyProject, read_pyproject, read_toml

__all__ = [
    "PROJECT_FILE",
    "SERVERS",
    "AppServer",
    "Command",
    "ConsoleScript",
    "Entrypoint",
    "Layout",
    "PyProject",
    "ServedApp",
    "ServiceProject",
    "choose_entrypoint",
    "discover_service",
    "find_project_root",
    "read_pyproject",
    "read_toml",
    "workspace_members",
]
