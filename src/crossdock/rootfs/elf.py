"""ELF facts crossdock needs, and the one table from OCI platform to ELF identity.

Facts are read from the program headers and the dynamic segment only (never the section
headers), because those sit near the start of a file and are what the dynamic loader itself reads:
a stripped library still has them, and a reader that is streamed from a layer does not have to
reach the end of a 100 MB ``.so`` to learn what it needs.

``EM_X86_64``/``EM_AARCH64``, ELF classes and GNU triplets appear here and nowhere else
(design note 3: one vocabulary inside, translated at the edge through one table).
"""

from __future__ import annotations

import functools
import io
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from crossdock.platform import AMD64, ARM64, Platform
from crossdock.wheeltags import wheel_arch

__all__ = [
    "ELF_MAGIC",
    "ElfFacts",
    "ElfIdentity",
    "ElfParseError",
    "elf_identity_for",
    "highest_version",
    "parse_elf",
    "version_key",
]

ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class ElfIdentity:
    """What an ELF header must say to run on a platform, and the GNU names of that platform."""

    machine: str  # pyelftools' e_machine name, e.g. "EM_AARCH64"
    elf_class: int  # 32 or 64
    little_endian: bool
    gnu_triplet: str  # multiarch directory and CPython SOABI suffix, e.g. "aarch64-linux-gnu"
    platform: Platform

    @property
    def wheel_arch(self) -> str:
        """The architecture part of wheel platform tags, e.g. "aarch64" (from the one table)."""
        return wheel_arch(self.platform)

    def describe(self) -> str:
        endian = "little-endian" if self.little_endian else "big-endian"
        return f"{self.machine} ELF{self.elf_class} {endian}"


# The one table from OCI platform to ELF identity (auditwheel lddtree._get_platform has the same
# facts the other way round).
_IDENTITIES: dict[Platform, ElfIdentity] = {
    AMD64: ElfIdentity(
        "EM_X86_64", 64, little_endian=True, gnu_triplet="x86_64-linux-gnu", platform=AMD64
    ),
    ARM64: ElfIdentity(
        "EM_AARCH64", 64, little_endian=True, gnu_triplet="aarch64-linux-gnu", platform=ARM64
    ),
}


def elf_identity_for(platform: Platform) -> ElfIdentity | None:
    """The ELF identity of a platform, or None when crossdock has no table entry for it."""
    for known, identity in _IDENTITIES.items():
        if platform.matches(known.os, known.architecture, known.variant) or platform == known:
            return identity
    return None


class ElfParseError(ValueError):
    """The bytes start like ELF but their headers are damaged or truncated."""


@dataclass(frozen=True)
class ElfFacts:
    """What one ELF file is and which symbol versions it needs and defines."""

    machine: str
    elf_class: int
    little_endian: bool
    elf_type: str  # ET_DYN, ET_EXEC, ET_REL...
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED library names
    # (library, version) from the GNU version-needs table, e.g. ("libc.so.6", "GLIBC_2.34")
    version_needs: tuple[tuple[str, str], ...]
    version_defs: tuple[str, ...]  # names from the version-definitions table, e.g. "GLIBC_2.41"

    def describe(self) -> str:
        endian = "little-endian" if self.little_endian else "big-endian"
        return f"{self.machine} ELF{self.elf_class} {endian}"

    def matches(self, identity: ElfIdentity) -> bool:
        return (
            self.machine == identity.machine
            and self.elf_class == identity.elf_class
            and self.little_endian == identity.little_endian
        )

    def required(self, prefix: str, *, library_prefix: str | None = None) -> tuple[int, ...] | None:
        """The highest ``PREFIX_x.y[.z]`` version this file needs, or None.

        ``library_prefix`` limits the search to needs on one library (``libstdc++.so``), since a
        wheel's vendored, renamed copy of a library is satisfied by the wheel, not the image.
        """
        names = [
            name
            for library, name in self.version_needs
            if library_prefix is None or library.startswith(library_prefix)
        ]
        return highest_version(names, prefix)

    def defined(self, prefix: str) -> tuple[int, ...] | None:
        """The highest ``PREFIX_x.y[.z]`` this file defines (libc.so.6 defines GLIBC_2.2.5...)."""
        return highest_version(self.version_defs, prefix)


def version_key(name: str, prefix: str) -> tuple[int, ...] | None:
    """``GLIBC_2.34`` -> (2, 34) for prefix ``GLIBC``; None for other names (GLIBC_PRIVATE)."""
    match = re.fullmatch(re.escape(prefix) + r"_(\d+(?:\.\d+)*)", name)
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def highest_version(names: Iterable[str], prefix: str) -> tuple[int, ...] | None:
    keys = [key for name in names if (key := version_key(name, prefix)) is not None]
    return max(keys) if keys else None


# Bounds on what a damaged or hostile file can make the parser do.
_MAX_VERSION_ENTRIES = 4096
_MAX_PROGRAM_HEADERS = 4096
_MAX_DYNAMIC_ENTRIES = 8192
_MAX_STRING = 4096


@functools.cache
def _names() -> tuple[dict[int, str], dict[int, str]]:
    """e_machine and e_type names from pyelftools' tables, so the spellings match the ELF
    specification's. Imported when an ELF file is first parsed: pyelftools brings its construct
    library (and pdb) along, ~20 ms, which a build whose ELF facts are all cached never needs."""
    from elftools.elf.enums import ENUM_E_MACHINE, ENUM_E_TYPE

    machines = {number: name for name, number in ENUM_E_MACHINE.items() if name != "_default_"}
    types = {number: name for name, number in ENUM_E_TYPE.items() if name != "_default_"}
    return machines, types


_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_SONAME = 0, 1, 5, 14
_DT_VERDEF, _DT_VERDEFNUM, _DT_VERNEED, _DT_VERNEEDNUM = (
    0x6FFFFFFC,
    0x6FFFFFFD,
    0x6FFFFFFE,
    0x6FFFFFFF,
)


def parse_elf(stream: IO[bytes] | io.RawIOBase) -> ElfFacts:
    """Read an ELF file's identity and GNU symbol versions from a seekable binary stream.

    A direct ``struct`` reading of the few records needed: pyelftools' object model reads every
    section header to build a dynamic segment, which is 10x slower over hundreds of files and
    reads to the end of each file; the unit tests check this reader against pyelftools.
    """
    try:
        return _Reader(stream).facts()
    except (struct.error, ValueError, IndexError) as err:
        raise ElfParseError(f"damaged ELF headers: {err}") from err


class _Reader:
    def __init__(self, stream: IO[bytes] | io.RawIOBase) -> None:
        self.stream = stream
        ident = self.read(0, 16)
        if len(ident) < 16 or not ident.startswith(ELF_MAGIC):
            raise ValueError("no ELF magic")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ValueError(f"unknown ELF class {ident[4]} or data encoding {ident[5]}")
        self.elf_class = 64 if ident[4] == 2 else 32
        self.little = ident[5] == 1
        self.end = "<" if self.little else ">"
        self.word = "Q" if self.elf_class == 64 else "I"

    def read(self, offset: int, size: int) -> bytes:
        self.stream.seek(offset)
        data = self.stream.read(size)
        return bytes(data or b"")

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        full = self.end + fmt
        return struct.unpack(full, self.read(offset, struct.calcsize(full)))

    def facts(self) -> ElfFacts:
        w = self.word
        e_type, e_machine, _version, _entry, phoff = self.unpack(f"HHI{w}{w}", 16)
        phentsize, phnum = self.unpack("HH", 54 if self.elf_class == 64 else 42)
        loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
        dynamic: tuple[int, int] | None = None  # (offset, filesz)
        for i in range(min(phnum, _MAX_PROGRAM_HEADERS)):
            at = phoff + i * phentsize
            if self.elf_class == 64:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = self.unpack("IIQQQQ", at)
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = self.unpack("IIIII", at)
            if p_type == _PT_LOAD:
                loads.append((p_vaddr, p_filesz, p_offset))
            elif p_type == _PT_DYNAMIC and dynamic is None:
                dynamic = (p_offset, p_filesz)
        tags, needed_offsets = self._dynamic(dynamic)
        strtab = _file_offset(loads, tags.get(_DT_STRTAB))

        def string_at(offset: int) -> str:
            if strtab is None:
                return ""
            return (
                self.read(strtab + offset, _MAX_STRING)
                .split(b"\0", 1)[0]
                .decode("utf-8", "replace")
            )

        soname = string_at(tags[_DT_SONAME]) if _DT_SONAME in tags else None
        return ElfFacts(
            machine=_names()[0].get(e_machine, f"EM_{e_machine}"),
            elf_class=self.elf_class,
            little_endian=self.little,
            elf_type=_names()[1].get(e_type, f"ET_{e_type}"),
            soname=soname,
            needed=tuple(string_at(o) for o in needed_offsets),
            version_needs=tuple(self._needs(loads, tags, string_at)),
            version_defs=tuple(self._defs(loads, tags, string_at)),
        )

    def _dynamic(self, dynamic: tuple[int, int] | None) -> tuple[dict[int, int], list[int]]:
        tags: dict[int, int] = {}
        needed: list[int] = []
        if dynamic is None:
            return tags, needed
        offset, size = dynamic
        entry = 16 if self.elf_class == 64 else 8
        fmt = "qQ" if self.elf_class == 64 else "iI"
        raw = self.read(offset, min(size, entry * _MAX_DYNAMIC_ENTRIES))
        for position in range(0, len(raw) - entry + 1, entry):
            tag, value = struct.unpack_from(self.end + fmt, raw, position)
            if tag == _DT_NULL:
                break
            if tag == _DT_NEEDED:
                needed.append(value)
            else:
                tags.setdefault(tag, value)
        return tags, needed

    def _needs(
        self,
        loads: list[tuple[int, int, int]],
        tags: dict[int, int],
        string_at: Callable[[int], str],
    ) -> Iterator[tuple[str, str]]:
        at = _file_offset(loads, tags.get(_DT_VERNEED))
        if at is None:
            return
        # One bound for the whole file: entries may share one chain of auxiliary entries, so
        # bounding each loop alone still let a small file make _MAX_VERSION_ENTRIES ** 2 needs.
        budget = _MAX_VERSION_ENTRIES
        for _ in range(min(tags.get(_DT_VERNEEDNUM, 0), _MAX_VERSION_ENTRIES)):
            _version, count, file_name, aux, next_entry = self.unpack("HHIII", at)
            library = string_at(file_name)
            aux_at = at + aux
            for _ in range(min(count, _MAX_VERSION_ENTRIES)):
                budget -= 1
                if budget < 0:
                    raise ValueError(f"more than {_MAX_VERSION_ENTRIES} version needs")
                _hash, _flags, _other, name, next_aux = self.unpack("IHHII", aux_at)
                yield library, string_at(name)
                if not next_aux:
                    break
                aux_at += next_aux
            if not next_entry:
                break
            at += next_entry

    def _defs(
        self,
        loads: list[tuple[int, int, int]],
        tags: dict[int, int],
        string_at: Callable[[int], str],
    ) -> Iterator[str]:
        at = _file_offset(loads, tags.get(_DT_VERDEF))
        if at is None:
            return
        for _ in range(min(tags.get(_DT_VERDEFNUM, 0), _MAX_VERSION_ENTRIES)):
            _version, _flags, _index, _count, _hash, aux, next_entry = self.unpack("HHHHIII", at)
            # The first auxiliary entry names the version itself; later ones name its parents.
            (name,) = self.unpack("I", at + aux)
            yield string_at(name)
            if not next_entry:
                break
            at += next_entry


def _file_offset(loads: list[tuple[int, int, int]], address: int | None) -> int | None:
    """File offset of a virtual address (dynamic tags hold addresses, not offsets)."""
    if address is None:
        return None
    for vaddr, filesz, offset in loads:
        if vaddr <= address < vaddr + filesz:
            return address - vaddr + offset
    return None
