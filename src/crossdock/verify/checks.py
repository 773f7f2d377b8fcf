"""The checks, as pure functions from parsed facts to findings (no tar files, no I/O)."""

from __future__ import annotations

from packaging.tags import Tag

from crossdock.platform import Platform
from crossdock.rootfs.elf import ElfFacts, ElfIdentity
from crossdock.verify.pyabi import (
    ExtensionSuffix,
    judge_wheel_tags,
    pyc_magic_for,
    pyc_version,
)
from crossdock.verify.report import Check, FileRef, Finding
from crossdock.wheeltags import WheelTarget

__all__ = [
    "check_elf_platform",
    "check_entrypoint",
    "check_extension_suffix",
    "check_foreign_binary",
    "check_glibc",
    "check_glibcxx",
    "check_pyc",
    "check_wheel",
    "dotted",
]

_INSTALL_FOR_PLATFORM = (
    "install the package for the image's platform (crossdock build does; with uv: "
    "uv pip install --python-platform {triplet_arch}-manylinux_2_28 --only-binary :all:) "
    "instead of copying binaries built elsewhere"
)


def dotted(version: tuple[int, ...] | None) -> str:
    return ".".join(str(part) for part in version) if version else "?"


def check_elf_platform(
    file: FileRef, facts: ElfFacts, identity: ElfIdentity, platform: Platform
) -> Finding | None:
    if facts.matches(identity):
        return None
    return Finding(
        Check.ELF_PLATFORM,
        file,
        expected=f"{identity.describe()} ({platform})",
        found=facts.describe(),
        fix=_INSTALL_FOR_PLATFORM.format(triplet_arch=identity.wheel_arch),
    )


def check_foreign_binary(file: FileRef, description: str, platform: Platform) -> Finding:
    os_name = "macOS" if description.startswith("Mach-O") else "Windows"
    return Finding(
        Check.FOREIGN_BINARY,
        file,
        expected=f"ELF for {platform}",
        found=description,
        fix=f"a {os_name} binary cannot be loaded on Linux: install dependencies for "
        f"{platform} inside the build, and keep local environments (.venv) out of the "
        "build context (.dockerignore)",
    )


def check_glibc(file: FileRef, facts: ElfFacts, available: tuple[int, ...]) -> Finding | None:
    needed = facts.required("GLIBC")
    if needed is None or needed <= available:
        return None
    return Finding(
        Check.GLIBC,
        file,
        expected=f"GLIBC <= {dotted(available)} (the base image's libc.so.6)",
        found=f"needs GLIBC_{dotted(needed)}",
        fix=f"install a wheel built for manylinux_{available[0]}_{available[1]} or older "
        "(crossdock chooses it from the base's glibc), or use a base image with glibc "
        f">= {dotted(needed)}",
    )


def check_glibcxx(
    file: FileRef, facts: ElfFacts, available: tuple[int, ...] | None
) -> Finding | None:
    needed = facts.required("GLIBCXX", library_prefix="libstdc++.so")
    if needed is None or (available is not None and needed <= available):
        return None
    have = f"GLIBCXX <= {dotted(available)}" if available else "a libstdc++.so.6"
    return Finding(
        Check.GLIBCXX,
        file,
        expected=f"{have} (the image's libstdc++)",
        found=f"needs GLIBCXX_{dotted(needed)}",
        fix="install libstdc++6 in the base (or a newer one), or a wheel built against an "
        "older libstdc++",
    )


def check_extension_suffix(
    file: FileRef,
    suffix: ExtensionSuffix,
    python: tuple[int, int] | None,
    identity: ElfIdentity | None,
) -> list[Finding]:
    findings: list[Finding] = []
    if python is not None and suffix.python is not None and suffix.python != python:
        findings.append(
            Finding(
                Check.EXTENSION_SUFFIX,
                file,
                expected=f"cpython-{python[0]}{python[1]} (the image's Python {dotted(python)})",
                found=f"cpython-{suffix.python[0]}{suffix.python[1]}"
                + ("t" if suffix.free_threaded else ""),
                fix=f"Python {dotted(python)} will not import this module (ModuleNotFoundError):"
                f" reinstall the package for Python {dotted(python)}",
            )
        )
    elif python is not None and suffix.free_threaded:
        findings.append(
            Finding(
                Check.EXTENSION_SUFFIX,
                file,
                expected=f"cpython-{python[0]}{python[1]} (GIL build)",
                found="a free-threaded (t) build",
                fix="reinstall the package for the image's (GIL) Python",
            )
        )
    if (
        identity is not None
        and suffix.platform is not None
        and suffix.platform != identity.gnu_triplet
    ):
        findings.append(
            Finding(
                Check.EXTENSION_SUFFIX,
                file,
                expected=identity.gnu_triplet,
                found=suffix.platform,
                fix=_INSTALL_FOR_PLATFORM.format(triplet_arch=identity.wheel_arch),
            )
        )
    return findings


def check_pyc(file: FileRef, head: bytes, python: tuple[int, int]) -> Finding | None:
    parsed = pyc_version(head)
    expected_magic = pyc_magic_for(python)
    if parsed is None:
        return Finding(
            Check.PYC_MAGIC,
            file,
            expected=f"a .pyc for Python {dotted(python)}",
            found="no .pyc header",
            fix="remove the file or compile it with the image's Python",
        )
    series, magic = parsed
    if series == python and (expected_magic is None or magic == expected_magic):
        return None
    return Finding(
        Check.PYC_MAGIC,
        file,
        expected=f"magic {expected_magic} (Python {dotted(python)})",
        found=f"magic {magic} (Python {dotted(series) if series else 'unknown'})",
        fix="bytecode written by another Python is ignored or, without its source, fails to "
        f"import: compile with Python {dotted(python)} inside the image (or ship no .pyc)",
    )


def check_wheel(
    file: FileRef, tags_text: str, tags: list[Tag], target: WheelTarget
) -> list[Finding]:
    verdict = judge_wheel_tags(tags, target)
    if verdict.fits:
        return []
    found = tags_text or "no Tag lines"
    findings: list[Finding] = []
    if not verdict.python_ok:
        findings.append(
            Finding(
                Check.WHEEL_PYTHON,
                file,
                expected=f"{target.cp}, abi3 or py3 tags (Python {dotted(target.python_version)})",
                found=found,
                fix=f"reinstall the package for Python {dotted(target.python_version)}",
            )
        )
    if not verdict.platform_ok:
        findings.append(
            Finding(
                Check.WHEEL_PLATFORM,
                file,
                expected=f"manylinux_*_{target.arch}, linux_{target.arch} or any",
                found=found,
                fix=_INSTALL_FOR_PLATFORM.format(triplet_arch=target.arch),
            )
        )
    if not verdict.glibc_ok:
        findings.append(
            Finding(
                Check.WHEEL_GLIBC,
                file,
                expected=f"manylinux level <= glibc {dotted(target.glibc)}",
                found=f"{found} (needs glibc {dotted(verdict.needed_glibc)})",
                fix="install an older build of the package (a lower manylinux level) or use "
                "a base image with a newer glibc",
            )
        )
    if not findings:
        findings.append(
            Finding(
                Check.WHEEL_TAG,
                file,
                expected=f"a tag for {target.cp} on manylinux <= {dotted(target.glibc)} "
                f"{target.arch}",
                found=found,
                fix="reinstall the package for the image's Python and platform",
            )
        )
    return findings


def check_entrypoint(
    command: str,
    file: FileRef,
    facts: ElfFacts,
    identity: ElfIdentity,
    platform: Platform,
) -> Finding | None:
    """The config's architecture label against the ELF the container actually executes."""
    if facts.matches(identity):
        return None
    return Finding(
        Check.ENTRYPOINT,
        file,
        expected=f"{identity.describe()}, as the config's label {platform} says",
        found=f"{command!r} runs {file.path}: {facts.describe()}",
        fix="the image would fail with 'exec format error': build the image for its labelled "
        "platform (or label it with the platform its binaries are for)",
    )
