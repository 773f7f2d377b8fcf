from __future__ import annotations

import io
from pathlib import Path

import pytest

from crossdock.platform import AMD64, ARM64, Platform
from crossdock.rootfs.elf import ElfParseError, elf_identity_for, parse_elf, version_key
from tests.support.layertar import DATA, fixture_bytes
from tests.support.prerequisites import missing


def _facts(name):
    return parse_elf(io.BytesIO(fixture_bytes(name)))


def test_identity_table_names_both_platforms():
    assert elf_identity_for(AMD64).machine == "EM_X86_64"  # type: ignore[union-attr]
    assert elf_identity_for(ARM64).machine == "EM_AARCH64"  # type: ignore[union-attr]
    # A config that omits the arm64 variant is the same platform.
    assert elf_identity_for(Platform("linux", "arm64")) == elf_identity_for(ARM64)
    assert elf_identity_for(Platform("linux", "riscv64")) is None


@pytest.mark.parametrize(
    ("name", "machine", "glibc"),
    [
        ("x86_64-puts.so", "EM_X86_64", (2, 2, 5)),
        ("x86_64-pthread.so", "EM_X86_64", (2, 34)),  # pthread_create@GLIBC_2.34
        ("x86_64-hello", "EM_X86_64", (2, 34)),  # __libc_start_main@GLIBC_2.34
        ("aarch64-puts.so", "EM_AARCH64", (2, 17)),  # aarch64's first glibc version
        ("aarch64-pthread.so", "EM_AARCH64", (2, 34)),
    ],
)
def test_real_elf_fixtures(name, machine, glibc):
    facts = _facts(name)
    assert facts.machine == machine
    assert facts.elf_class == 64
    assert facts.little_endian
    assert facts.required("GLIBC") == glibc
    assert "libc.so.6" in facts.needed
    assert facts.matches(elf_identity_for(AMD64 if "x86" in name else ARM64))
    assert not facts.matches(elf_identity_for(ARM64 if "x86" in name else AMD64))


def test_glibcxx_need_is_read_from_libstdcxx_only():
    facts = _facts("x86_64-cxx.so")
    assert facts.required("GLIBCXX", library_prefix="libstdc++.so") == (3, 4, 26)
    assert facts.required("GLIBCXX", library_prefix="libstdc++-deadbeef.so") is None


def test_host_libc_defines_its_version():
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.exists():
        pytest.skip("not an x86-64 Debian host")
    with libc.open("rb") as stream:
        facts = parse_elf(stream)
    assert facts.soname == "libc.so.6"
    assert facts.defined("GLIBC") >= (2, 36)  # type: ignore[operator]


def test_version_key():
    assert version_key("GLIBC_2.34", "GLIBC") == (2, 34)
    assert version_key("GLIBC_PRIVATE", "GLIBC") is None
    assert version_key("GLIBCXX_3.4.30", "GLIBC") is None


def test_truncated_elf_is_a_parse_error():
    with pytest.raises(ElfParseError):
        parse_elf(io.BytesIO(fixture_bytes("x86_64-puts.so")[:40]))


def test_fixture_folder_is_small():
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 100_000


def _pyelftools_versions(data: bytes) -> tuple[set[tuple[str, str]], set[str]]:
    """The same facts through pyelftools' section-based object model (an independent reader)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

    elf = ELFFile(io.BytesIO(data))
    needs: set[tuple[str, str]] = set()
    defs: set[str] = set()
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for verneed, auxiliaries in section.iter_versions():
                needs |= {(str(verneed.name), str(aux.name)) for aux in auxiliaries}
        elif isinstance(section, GNUVerDefSection):
            for _verdef, auxiliaries in section.iter_versions():
                defs.add(next(iter(auxiliaries)).name)
    return needs, defs


@pytest.mark.parametrize(
    "path",
    [
        *sorted(p for p in DATA.iterdir() if p.suffix == ".so" or p.name.endswith("hello")),
        Path("/lib/x86_64-linux-gnu/libc.so.6"),
        Path("/usr/aarch64-linux-gnu/lib/libc.so.6"),
        Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6"),
    ],
    ids=lambda p: p.name,
)
def test_reader_agrees_with_pyelftools(path):
    if not path.exists():
        missing(f"{path} not installed (stage/stage.sh up installs the arm64 cross libraries)")
    data = path.read_bytes()
    facts = parse_elf(io.BytesIO(data))
    needs, defs = _pyelftools_versions(data)
    assert set(facts.version_needs) == needs
    assert set(facts.version_defs) == defs
