"""ELF facts crossdock needs, and the one table from OCI platform to ELF identity.

Facts are read from the program headers and the dynamic segment only (never the section
headers), because those sit near the start of a file and are what the dynamic loader itself reads:
a stripped library still has them, and a reader that is streamed from a layer does not have to
reach the end of a 100 MB ``.so`` to learn what it needs.

``EM_X86_64``/``EM_AARCH64``, ELF classes and GNU triplets appear here and nowhere else
(design note 3: one vocabulary inside, translated at the edge through one table).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile

from crossdock.platform import AMD64, ARM64, Platform

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
    wheel_arch: str  # the architecture part of wheel platform tags, e.g. "aarch64"

    def describe(self) -> str:
        endian = "little-endian" if self.little_endian else "big-endian"
        return f"{self.machine} ELF{self.elf_class} {endian}"


# The one table from OCI platform to ELF identity (auditwheel lddtree._get_platform has the same
# facts the other way round).
_IDENTITIES: dict[Platform, ElfIdentity] = {
    AMD64: ElfIdentity(
        "EM_X86_64", 64, little_endian=True, gnu_triplet="x86_64-linux-gnu", wheel_arch="x86_64"
    ),
    ARM64: ElfIdentity(
        "EM_AARCH64", 64, little_endian=True, gnu_triplet="aarch64-linux-gnu", wheel_arch="aarch64"
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
_MAX_STRING = 4096


def parse_elf(stream: IO[bytes] | io.RawIOBase) -> ElfFacts:
    """Read an ELF file's identity and GNU symbol versions from a seekable binary stream."""
    try:
        return _parse(ELFFile(stream))  # type: ignore[arg-type]  # any seekable binary stream
    except (ELFError, ConstructError, ValueError, KeyError, AttributeError) as err:
        raise ElfParseError(f"damaged ELF headers: {err}") from err


def _parse(elf: ELFFile) -> ElfFacts:
    tags: dict[str, int] = {}
    needed_offsets: list[int] = []
    for segment in elf.iter_segments(type="PT_DYNAMIC"):
        for tag in segment.iter_tags():  # type: ignore[attr-defined]  # a DynamicSegment
            name = tag.entry.d_tag
            if name == "DT_NEEDED":
                needed_offsets.append(tag.entry.d_val)
            elif isinstance(name, str) and name not in tags:
                tags[name] = tag.entry.d_val
        break
    strtab = _offset_of(elf, tags.get("DT_STRTAB"))

    def string_at(offset: int) -> str:
        return _read_string(elf.stream, strtab + offset) if strtab is not None else ""

    soname = string_at(tags["DT_SONAME"]) if "DT_SONAME" in tags else None
    needs: list[tuple[str, str]] = []
    verneed = _offset_of(elf, tags.get("DT_VERNEED"))
    if verneed is not None and strtab is not None:
        count = min(tags.get("DT_VERNEEDNUM", 0), _MAX_VERSION_ENTRIES)
        for _ in range(count):
            entry = struct_parse(elf.structs.Elf_Verneed, elf.stream, stream_pos=verneed)
            library = string_at(entry.vn_file)
            aux = verneed + entry.vn_aux
            for _ in range(min(entry.vn_cnt, _MAX_VERSION_ENTRIES)):
                vernaux = struct_parse(elf.structs.Elf_Vernaux, elf.stream, stream_pos=aux)
                needs.append((library, string_at(vernaux.vna_name)))
                if not vernaux.vna_next:
                    break
                aux += vernaux.vna_next
            if not entry.vn_next:
                break
            verneed += entry.vn_next
    defs: list[str] = []
    verdef = _offset_of(elf, tags.get("DT_VERDEF"))
    if verdef is not None and strtab is not None:
        count = min(tags.get("DT_VERDEFNUM", 0), _MAX_VERSION_ENTRIES)
        for _ in range(count):
            entry = struct_parse(elf.structs.Elf_Verdef, elf.stream, stream_pos=verdef)
            # The first auxiliary entry names the version itself; later ones name its parents.
            verdaux = struct_parse(
                elf.structs.Elf_Verdaux, elf.stream, stream_pos=verdef + entry.vd_aux
            )
            defs.append(string_at(verdaux.vda_name))
            if not entry.vd_next:
                break
            verdef += entry.vd_next
    return ElfFacts(
        machine=str(elf["e_machine"]),
        elf_class=int(elf.elfclass),
        little_endian=bool(elf.little_endian),
        elf_type=str(elf["e_type"]),
        soname=soname,
        needed=tuple(string_at(offset) for offset in needed_offsets),
        version_needs=tuple(needs),
        version_defs=tuple(defs),
    )


def _offset_of(elf: ELFFile, address: int | None) -> int | None:
    """File offset of a virtual address (dynamic tags hold addresses, not offsets)."""
    if address is None:
        return None
    for offset in elf.address_offsets(address):
        return int(offset)
    return None


def _read_string(stream: IO[bytes], offset: int) -> str:
    stream.seek(offset)
    raw = stream.read(_MAX_STRING)
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")
