"""Facts about this machine, gathered through injected paths and commands so tests can run the
doctor with QEMU on and off and with no docker on PATH. Parsers are pure functions."""

from __future__ import annotations

import json
import os
import platform as _platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crossdock.dockercli import Docker, find_docker
from crossdock.platform import Platform

__all__ = [
    "BINFMT_ENTRIES",
    "BinfmtEntry",
    "Builder",
    "DockerFacts",
    "HostEnv",
    "parse_binfmt_entry",
    "parse_buildx_ls",
    "probe_binfmt",
    "probe_docker",
]

# binfmt_misc entry names that QEMU's packages register, by OCI architecture.
BINFMT_ENTRIES = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}
# docker and buildx answer in well under a second; a hung daemon must not hang the doctor.
_TIMEOUT = 20


@dataclass(frozen=True)
class HostEnv:
    """Where the doctor looks: every outside fact comes through here."""

    docker: str = "docker"
    path: str | None = None  # PATH to find docker on; None: this process's PATH
    binfmt_dir: Path = Path("/proc/sys/fs/binfmt_misc")
    machine: str = field(default_factory=_platform.machine)
    environ: Mapping[str, str] | None = None

    def env(self) -> dict[str, str]:
        env = dict(self.environ if self.environ is not None else os.environ)
        if self.path is not None:
            env["PATH"] = self.path
        return env


@dataclass(frozen=True)
class BinfmtEntry:
    name: str
    state: str  # enabled, disabled, absent, unmounted
    interpreter: str | None = None
    flags: str = ""

    @property
    def fix_binary(self) -> bool:
        # F: the kernel opens the interpreter at registration, so it works inside containers.
        return "F" in self.flags


def parse_binfmt_entry(name: str, text: str) -> BinfmtEntry:
    lines = text.splitlines()
    state = lines[0].strip() if lines else "absent"
    interpreter = flags = None
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        if key == "interpreter":
            interpreter = value.strip()
        elif key == "flags:":
            flags = value.strip()
    return BinfmtEntry(name, state, interpreter, flags or "")


def probe_binfmt(env: HostEnv, architecture: str) -> BinfmtEntry:
    name = BINFMT_ENTRIES.get(architecture, f"qemu-{architecture}")
    if not (env.binfmt_dir / "status").exists():
        return BinfmtEntry(name, "unmounted")
    try:
        return parse_binfmt_entry(name, (env.binfmt_dir / name).read_text())
    except FileNotFoundError:
        return BinfmtEntry(name, "absent")


@dataclass(frozen=True)
class Builder:
    name: str
    driver: str
    current: bool
    status: str = ""
    buildkit: str = ""
    platforms: tuple[str, ...] = ()


def parse_buildx_ls(text: str) -> list[Builder]:
    """Builders from ``docker buildx ls`` (buildx 0.13's tree layout and the older flat one)."""
    builders: list[Builder] = []
    header = True
    for raw in text.splitlines():
        if header:
            header = False
            continue
        if not raw.strip():
            continue
        node = raw.lstrip().startswith("\\_")
        parts = raw.replace("\\_", " ").split()
        if not node and parts:
            name = parts[0]
            current = name.endswith("*")
            driver = parts[1] if len(parts) > 1 else ""
            builders.append(Builder(name.rstrip("*"), driver, current))
            # Old flat layout: NAME DRIVER on one line, then nodes "NAME ENDPOINT STATUS ..."
            continue
        if builders and node:
            rest = raw.split("\\_", 2)[-1].split()
            # rest: ENDPOINT STATUS BUILDKIT PLATFORMS...
            status = rest[1] if len(rest) > 1 else ""
            buildkit = rest[2] if len(rest) > 2 else ""
            plats = " ".join(rest[3:]).replace(",", " ").split()
            last = builders[-1]
            builders[-1] = Builder(
                last.name, last.driver, last.current, status, buildkit, tuple(plats)
            )
    return builders


@dataclass(frozen=True)
class DockerFacts:
    path: str | None
    client_version: str | None = None
    server_version: str | None = None
    server_error: str | None = None
    buildx_version: str | None = None
    builders: tuple[Builder, ...] = ()


def probe_docker(env: HostEnv) -> DockerFacts:
    docker = find_docker(env.docker, environ=env.env())
    if docker is None:
        return DockerFacts(None)
    driver = Docker(docker, environ=env.env())

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return driver.call(args, timeout=_TIMEOUT)

    client = server = error = None
    try:
        done = run("version", "--format", "{{json .}}")
        data = json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}
        client = (data.get("Client") or {}).get("Version")
        server = (data.get("Server") or {}).get("Version") if data.get("Server") else None
        if server is None:
            error = (done.stderr.strip().splitlines() or ["no answer"])[-1]
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as err:
        error = str(err)
    buildx = None
    builders: tuple[Builder, ...] = ()
    try:
        done = run("buildx", "version")
        if done.returncode == 0:
            buildx = done.stdout.strip()
            if server is not None:
                listed = run("buildx", "ls")
                builders = tuple(parse_buildx_ls(listed.stdout)) if listed.returncode == 0 else ()
    except subprocess.TimeoutExpired:
        pass
    return DockerFacts(docker, client, server, error, buildx, builders)


def host_architecture(env: HostEnv) -> str:
    return Platform.parse(f"linux/{env.machine}").architecture
