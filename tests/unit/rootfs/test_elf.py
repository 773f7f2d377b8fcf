from __future__ import annotations

import io
import struct
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


def _verneed_bomb(n: int) -> bytes:
    """A little-endian ELF64 whose ``n`` version-need entries all point at one chain of ``n``
    auxiliary entries: ``n * n`` needs from ``32 * n`` bytes."""
    phoff, dynamic, strtab, verneed = 64, 64 + 2 * 56, 512, 1024
    chain = verneed + 16 * n
    size = chain + 16 * n
    data = bytearray(size)
    header = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, phoff, 0, 0, 64, 56, 2, 64, 0, 0)
    data[: len(header)] = header
    data[phoff : phoff + 112] = struct.pack(
        "<IIQQQQQQIIQQQQQQ",
        1,
        5,
        0,
        0,
        0,
        size,
        size,
        4096,
        2,
        6,
        dynamic,
        dynamic,
        dynamic,
        64,
        64,
        8,
    )
    tags = (5, strtab, 0x6FFFFFFE, verneed, 0x6FFFFFFF, n, 0, 0)
    data[dynamic : dynamic + 64] = struct.pack("<qQqQqQqQ", *tags)
    data[strtab : strtab + 12] = b"\0GLIBC_2.17\0"
    for k in range(n):
        at = verneed + 16 * k
        data[at : at + 16] = struct.pack("<HHIII", 1, n, 0, chain - at, 16)
        aux = chain + 16 * k
        data[aux : aux + 16] = struct.pack("<IHHII", 0, 0, 0, 1, 16 if k < n - 1 else 0)
    return bytes(data)


def test_version_needs_are_bounded_for_the_whole_file_not_per_entry():
    # Each entry's chain was bounded (4096) and so was the number of entries (4096), but not
    # their product: a 132 KB file made 16.7 million needs (~2 GB and ~35 s per file).
    small = parse_elf(io.BytesIO(_verneed_bomb(16)))
    assert small.version_needs == (("", "GLIBC_2.17"),) * 256
    assert small.required("GLIBC") == (2, 17)
    with pytest.raises(ElfParseError, match="version"):
        parse_elf(io.BytesIO(_verneed_bomb(128)))
