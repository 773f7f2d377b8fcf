"""Build a package published only as an sdist, and keep the result only if it is pure Python.

A pure wheel (``py3-none-any``) is the same file for every platform, so building it on the host
is safe. A wheel with a platform tag holds native code compiled for the *host*; it is never
installed: the build is refused with the package, version, platform and the user's options.
The sdist is downloaded from the URL in uv.lock and checked against the lock's sha256 before
anything runs from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from crossdock import retries
from crossdock.errors import ResolveError, UnsafeContentError
from crossdock.resolve.lockfile import LockedPackage, LockedSdist, options_hint, wheel_tags
from crossdock.text import excerpt
from crossdock.tls import system_ssl_context
from crossdock.wheeltags import WheelTarget

if TYPE_CHECKING:
    import httpx

__all__ = [
    "build_pure_wheel",
    "fetch_sdist",
    "require_pure_wheel",
    "single_wheel",
    "tail",
    "wheel_build_args",
]

# An sdist bigger than this is not a small pure-Python package; refuse rather than fill the disk.
_MAX_SDIST_BYTES = 256 * 1024 * 1024
_DOWNLOAD_ATTEMPTS = 3
_TIMEOUT_SECONDS = 60.0
# Of a failed uv command's output, at most this many characters (its end) go into the error.
QUOTED_OUTPUT_CHARS = 3000

# Runs uv with arguments in a folder; returns (exit code, combined output). Given by the driver.
UvRun = Callable[[Sequence[str], Path], tuple[int, str]]


def _download(url: str, destination: Path, sdist: LockedSdist) -> str:
    """Stream ``url`` to ``destination``; return its sha256 (hex)."""
    # Imported here: only a lock with an sdist-only package downloads anything, and a build
    # whose trees are cached (a code-only rebuild) imports no HTTP stack.
    import httpx
    import stamina

    retries.install()  # each retry: one readable line (crossdock.retries)
    # The system trust store (and SSL_CERT_FILE), so a proxy's CA is trusted.
    context = system_ssl_context()
    limit = sdist.size if sdist.size is not None else _MAX_SDIST_BYTES
    made = 0
    try:
        for attempt in stamina.retry_context(on=httpx.TransportError, attempts=_DOWNLOAD_ATTEMPTS):
            made = attempt.num
            with (
                attempt,
                httpx.Client(
                    verify=context, follow_redirects=True, timeout=_TIMEOUT_SECONDS
                ) as client,
                client.stream("GET", url) as response,
            ):
                return _save(response, url, destination, limit)
    except httpx.TransportError as err:
        raise ResolveError(
            f"downloading {url} failed: {type(err).__name__}: {err}",
            hint="check that the index is reachable (network, proxy, SSL_CERT_FILE); "
            + retries.gave_up_after(made),
        ) from err
    raise AssertionError(
        "unreachable: stamina re-raises after the last attempt"
    )  # pragma: no cover


def _save(response: httpx.Response, url: str, destination: Path, limit: int) -> str:
    """The body of ``response`` (a 200 answer, or the download fails) written to
    ``destination``, at most ``limit`` bytes; its sha256 (hex)."""
    if response.status_code != 200:
        raise ResolveError(
            f"downloading {url} failed: HTTP {response.status_code}",
            hint="check that the index is reachable and run `uv lock` if the file moved",
        )
    digest = hashlib.sha256()
    written = 0
    with destination.open("wb") as out:
        for chunk in response.iter_bytes():
            written += len(chunk)
            if written > limit:
                raise UnsafeContentError(f"{url} is larger than the {limit} bytes the lock records")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def fetch_sdist(package: LockedPackage, project_dir: Path, work_dir: Path) -> Path:
    """Get ``package``'s locked sdist into ``work_dir`` and check it against the lock's hash."""
    sdist = package.sdist
    if sdist is None or sdist.sha256 is None:
        raise ResolveError(
            f"{package.name} {package.version}: the lock records no sdist with a sha256 hash",
            hint="run `uv lock` again",
        )
    filename = Path(sdist.filename).name  # never a path: the name comes from outside data
    if not filename or filename in (".", ".."):
        raise UnsafeContentError(f"{package.name}: unusable sdist file name {sdist.filename!r}")
    destination = work_dir / filename
    if sdist.url is not None:
        actual = _download(sdist.url, destination, sdist)
    else:
        source = (project_dir / (sdist.path or "")).resolve()
        destination.write_bytes(source.read_bytes())
        actual = hashlib.sha256(destination.read_bytes()).hexdigest()
    if actual != sdist.sha256:
        raise UnsafeContentError(
            f"{package.name} {package.version}: {filename} has sha256 {actual}, "
            f"but the lock says {sdist.sha256}",
            hint="the file changed on the index; check it, then run `uv lock --refresh`",
        )
    return destination


def build_pure_wheel(
    package: LockedPackage,
    target: WheelTarget,
    *,
    project_dir: Path,
    work_dir: Path,
    run_uv: UvRun,
    host_python: str | None = None,
) -> Path:
    """Build ``package``'s sdist on the host; return the wheel if it is pure Python, else refuse."""
    what = f"{package.name} {package.version}"
    options = options_hint(package, target)
    package_dir = work_dir / f"{package.name}-{package.version}"
    out_dir = package_dir / "wheel"
    out_dir.mkdir(parents=True)
    sdist_path = fetch_sdist(package, project_dir, package_dir)
    code, output = run_uv(wheel_build_args(sdist_path, out_dir, host_python), project_dir)
    if code != 0:
        raise ResolveError(
            f"{what} has no wheel for {target.platform} and building its sdist on the host failed "
            f"(it most likely needs a compiler for native code): {tail(output)}",
            hint=options,
        )
    wheel = single_wheel(out_dir, what, hint=options)
    return require_pure_wheel(
        wheel,
        what=what,
        native=f"{what} has no wheel for {target.platform} ({target.uv_python_platform}, CPython "
        f"{target.uv_python_version}), only an sdist, and that sdist contains native code",
        target=target,
        hint=options,
    )


def wheel_build_args(source: Path, out_dir: Path, host_python: str | None) -> list[str]:
    """``uv build`` arguments that build ``source`` (an sdist or a project folder) into one
    wheel in ``out_dir``, isolated, with the project's own build backend."""
    args = ["build", "--wheel", "--out-dir", str(out_dir), "--no-create-gitignore"]
    if host_python is not None:
        args += ["--python", host_python]
    return [*args, str(source)]


def single_wheel(out_dir: Path, what: str, *, hint: str) -> Path:
    """The one wheel a build wrote into ``out_dir``."""
    wheels = sorted(out_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise ResolveError(f"building {what} gave {len(wheels)} wheels instead of one", hint=hint)
    return wheels[0]


def require_pure_wheel(
    wheel: Path, *, what: str, native: str, target: WheelTarget, hint: str
) -> Path:
    """``wheel`` if it is pure Python (``py3-none-any``) for the target's Python, else refuse:
    a wheel built on the host with a platform tag holds native code compiled for the host.
    ``native`` starts the refusal's sentence ("X ... contains native code")."""
    tags = wheel_tags(wheel.name)
    if not tags or any(tag.abi != "none" or tag.platform != "any" for tag in tags):
        shown = ".".join(sorted(str(tag) for tag in tags)) or wheel.name
        raise ResolveError(
            f"{native} (building it on the host gave {shown}); crossdock never puts native code "
            "compiled on the host into an image",
            hint=hint,
        )
    if not target.accepts(tags):
        raise ResolveError(
            f"{what}: the pure wheel built on the host ({wheel.name}) does not support "
            f"CPython {target.uv_python_version}",
            hint=hint,
        )
    return wheel


def tail(output: str, lines: int = 25) -> str:
    """The last ``lines`` lines of a tool's ``output`` (what says why it failed), on one line
    for an error message (``crossdock.text.excerpt``)."""
    return excerpt("\n".join(output.strip().splitlines()[-lines:]), QUOTED_OUTPUT_CHARS, end=True)
