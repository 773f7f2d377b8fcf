"""``crossdock build --smoke``: start each platform's image and import its entry modules.

The startup check of verification (``verify.startup``) proves from the files alone that the
command's modules are where the image's Python looks; this goes one step further where docker is
available: it loads each platform's image into the daemon (a ``docker save`` tarball written from
the build, before anything is pushed), runs the image's own interpreter with its own environment,
user and working directory, and imports those modules: their native extensions load, their
imports of other packages resolve. arm64 runs under QEMU (binfmt_misc), so it is slow: minutes
for a service that imports numpy and friends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crossdock import scratch
from crossdock.dockercli import Docker
from crossdock.errors import VerificationError
from crossdock.image.artifact import ImageSet, PlatformImage
from crossdock.localrun.docker_run import default_start_timeout
from crossdock.platform import Platform
from crossdock.rootfs.fsview import LayerFS
from crossdock.sinks import write_docker_archive
from crossdock.text import excerpt
from crossdock.verify.startup import check_startup
from crossdock.wheeltags import wheel_arch

__all__ = ["SmokeResult", "smoke_test"]

# What the container runs: the modules the image's command imports, from the sys.path the
# startup check found them on, then one JSON line that says so.
_IMPORT_CODE = """\
import importlib, json, platform, sys
sys.path[:0] = [p for p in {path!r} if p not in sys.path]
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps({{"crossdock-smoke": {modules!r}, "machine": platform.machine()}}))
"""


@dataclass(frozen=True)
class SmokeResult:
    platform: Platform
    modules: tuple[str, ...]
    machine: str | None  # platform.machine() inside the container; None when nothing ran
    note: str | None = None


def smoke_test(
    image_set: ImageSet,
    progress: Callable[[Platform | None, str], None],
    *,
    work_dir: Path,
    docker: Docker | None = None,
    index_cache: Path | None = None,
) -> tuple[SmokeResult, ...]:
    """Import each platform image's entry modules in a container; raise VerificationError
    (nothing has been pushed yet) when one cannot."""
    docker = docker or Docker()
    return tuple(
        _smoke_one(image, progress, work_dir, docker, index_cache) for image in image_set.images
    )


def _smoke_one(
    image: PlatformImage,
    progress: Callable[[Platform | None, str], None],
    work_dir: Path,
    docker: Docker,
    index_cache: Path | None,
) -> SmokeResult:
    platform = image.platform
    fs = LayerFS(
        [blob.path for blob in image.layers],
        [blob.descriptor.digest for blob in image.layers],
        index_cache=index_cache,
    )
    startup = check_startup(image.config, fs)
    if not startup.modules or startup.python is None:
        note = "the command imports no Python module crossdock can name: nothing to import"
        progress(platform, f"smoke: {note}")
        return SmokeResult(platform, (), None, note)
    modules = tuple(startup.modules)
    work_dir.mkdir(parents=True, exist_ok=True)
    with scratch.temporary_directory(dir=work_dir, prefix="smoke-") as tmp:
        archive = Path(tmp) / "image.tar"
        (tag,) = write_docker_archive(
            ImageSet((image,), None),
            archive,
            repository="crossdock-smoke",
            tag=uuid.uuid4().hex[:12],
        )
        docker.load(archive)
    timeout = default_start_timeout(platform)
    progress(
        platform, f"smoke: importing {', '.join(modules)} in a container (up to {timeout:.0f}s)"
    )
    code = _IMPORT_CODE.format(path=startup.module_path, modules=list(modules))
    try:
        completed = docker.run_once(
            tag, platform, entrypoint=startup.python, args=["-c", code], timeout=timeout
        )
    finally:
        docker.remove_image(tag)
    machine = _machine(completed.stdout)
    if completed.returncode != 0 or machine is None:
        output = (completed.stderr or completed.stdout).strip().splitlines()
        said = excerpt("\n".join(output[-15:]), 2000, end=True) or "(it wrote nothing)"
        raise VerificationError(
            f"the {platform} image did not import {', '.join(modules)} when started "
            f"(exit {completed.returncode}); nothing was pushed: {said}",
            hint="run it yourself: docker run --platform "
            f"{platform.short} --entrypoint {startup.python} IMAGE -c 'import {modules[-1]}'",
        )
    if machine != wheel_arch(platform):
        raise VerificationError(
            f"the {platform} image ran as {machine}, not {wheel_arch(platform)}; nothing was "
            "pushed",
            hint="the image's binaries or its platform label are wrong: run crossdock verify",
        )
    progress(platform, f"smoke: {', '.join(modules)} imported ({machine})")
    return SmokeResult(platform, modules, machine)


def _machine(stdout: str) -> str | None:
    """platform.machine() from the container's last JSON line, or None if it never printed."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and "crossdock-smoke" in answer:
            machine = answer.get("machine")
            return str(machine) if machine else None
    return None
