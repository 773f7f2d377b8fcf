"""The one docker command-line driver: everything crossdock asks of the docker CLI (buildx
builds, ``docker save``, running images, the doctor's probes) goes through ``Docker``, with
argument lists only (no shell), bounded by timeouts.

Every container runs with ``--network host`` (``start``) or none (``run_once``): the servers
crossdock starts for it (the Lambda Runtime API) and the health checks it makes stay on
loopback, and nothing else is published. A foreign architecture runs through binfmt_misc + QEMU
(``--platform linux/arm64`` on an x86 host).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crossdock.children import run_child
from crossdock.errors import ToolError
from crossdock.platform import Platform
from crossdock.text import excerpt, printable

__all__ = ["Container", "Docker", "find_docker"]

# Pulls of a base-sized image from a loopback registry take seconds; this bounds a stuck daemon.
_PULL_TIMEOUT_S = 600
_COMMAND_TIMEOUT_S = 60
# Of docker's own words on a failure, the last this many characters are quoted (its error is
# the last line; what comes before is progress).
_QUOTED_OUTPUT_CHARS = 300


def find_docker(name: str = "docker", *, environ: Mapping[str, str] | None = None) -> str | None:
    """The docker binary on ``environ``'s PATH (crossdock's own by default), or None."""
    return shutil.which(name, path=(environ if environ is not None else os.environ).get("PATH"))


@dataclass(frozen=True)
class Container:
    id: str
    image: str
    platform: Platform

    @property
    def short_id(self) -> str:
        return self.id[:12]


class Docker:
    """The ``docker`` command line, called with argument lists only."""

    def __init__(
        self, binary: str | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        found = binary or find_docker(environ=environ)
        if found is None:
            raise ToolError(
                "docker is not installed (crossdock run, invoke and --smoke start images with it)",
                hint="install docker and start dockerd (on the stage: `stage/stage.sh docker`)",
            )
        self.binary = found
        # None: crossdock's own environment (PATH, DOCKER_HOST, proxies).
        self._environ = dict(environ) if environ is not None else None

    def call(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = _COMMAND_TIMEOUT_S,
        stream: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` and return what it did, whatever its exit code (the caller
        judges it); ``stream``: its output goes to the terminal instead (long builds)."""
        try:
            return run_child(
                [self.binary, *args],
                stdout=None if stream else subprocess.PIPE,
                stderr=None if stream else subprocess.PIPE,
                text=True,
                env=self._environ,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as err:
            raise ToolError(f"cannot run {self.binary}: {err}") from err

    def _run(
        self, args: Sequence[str], *, timeout: float = _COMMAND_TIMEOUT_S, what: str
    ) -> subprocess.CompletedProcess[str]:
        try:
            completed = self.call(args, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise ToolError(
                f"`docker {args[0]}` did not finish in {timeout:.0f}s ({what})"
            ) from err
        if completed.returncode != 0:
            output = (completed.stderr or completed.stdout).strip()
            hint = "run the same docker command by hand to see the whole output"
            if "Cannot connect to the Docker daemon" in output:
                hint = "start dockerd (on the stage: `stage/stage.sh docker`)"
            # docker's words are outside text: on one line, control characters escaped.
            quoted = excerpt(output, _QUOTED_OUTPUT_CHARS, end=True)
            raise ToolError(
                f"docker could not {printable(what)}: {quoted or f'exit {completed.returncode}'}",
                hint=hint,
            )
        return completed

    def pull(self, image: str, platform: Platform) -> None:
        self._run(
            ["pull", "--quiet", "--platform", platform.short, image],
            timeout=_PULL_TIMEOUT_S,
            what=f"pull {image} for {platform}",
        )

    def save(self, image: str, archive: Path) -> None:
        """``docker save`` one local image to a tarball."""
        self._run(
            ["save", "-o", str(archive), image], timeout=_PULL_TIMEOUT_S, what=f"save {image}"
        )

    def load(self, archive: Path) -> None:
        """``docker load`` a tarball in the ``docker save`` format (its tags come with it)."""
        self._run(
            ["load", "--quiet", "--input", str(archive)],
            timeout=_PULL_TIMEOUT_S,
            what=f"load {archive}",
        )

    def remove_image(self, image: str) -> None:
        """Untag a local image (its layers stay cached by the daemon); no error if it is gone."""
        self.call(["image", "rm", "--force", image])

    def run_once(
        self,
        image: str,
        platform: Platform,
        *,
        entrypoint: str,
        args: Sequence[str],
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``entrypoint ARGS`` in a throwaway container without network; the exit code and
        output are the caller's to judge (never raises on a non-zero exit)."""
        name = f"crossdock-once-{uuid.uuid4().hex[:12]}"
        command = ["run", "--rm", "--name", name, "--network", "none"]
        command += ["--platform", platform.short, "--entrypoint", entrypoint, image, *args]
        try:
            return self.call(command, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            self.call(["rm", "--force", name])
            raise ToolError(
                f"{image} for {platform} did not finish `{entrypoint}` in {timeout:.0f}s"
            ) from err

    def image_config(self, image: str) -> dict[str, object]:
        """The local image's config (``docker image inspect``'s ``Config``: Env, ExposedPorts)."""
        completed = self._run(["image", "inspect", image], what=f"inspect image {image}")
        inspected = json.loads(completed.stdout)
        config = inspected[0].get("Config") or {}
        return dict(config)

    def start(
        self,
        image: str,
        platform: Platform,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        name: str | None = None,
    ) -> Container:
        """Start ``image`` detached on the host network and return its container.

        Not ``--rm``: a container that dies at start must keep its logs until they are read for
        the error message; ``remove`` deletes it afterwards.
        """
        command = ["run", "-d", "--network", "host", "--platform", platform.short]
        if name:
            command += ["--name", name]
        for key, value in (env or {}).items():
            command += ["-e", f"{key}={value}"]
        command += [image, *args]
        completed = self._run(command, what=f"start {image} for {platform}")
        container_id = completed.stdout.strip().splitlines()[-1]
        return Container(container_id, image, platform)

    def state(self, container: Container) -> dict[str, object]:
        """``docker inspect``'s State of the container: Running, ExitCode, Error."""
        completed = self._run(
            ["inspect", "--format", "{{json .State}}", container.id],
            what=f"inspect container {container.short_id}",
        )
        state: dict[str, object] = json.loads(completed.stdout)
        return state

    def is_running(self, container: Container) -> bool:
        return bool(self.state(container).get("Running"))

    def logs(self, container: Container, *, tail: int = 30) -> str:
        """The container's last ``tail`` lines of stdout and stderr, interleaved."""
        completed = run_child(
            [self.binary, "logs", "--tail", str(tail), container.id],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, in the order the container wrote it
            text=True,
            env=self._environ,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
        return completed.stdout.strip()

    def remove(self, container: Container) -> None:
        """Stop and delete the container (no error if it is already gone)."""
        self.call(["rm", "--force", container.id])
