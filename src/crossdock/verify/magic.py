"""Which kind of native binary a file is, decided by its first bytes, never by its name."""

from __future__ import annotations

from enum import StrEnum

from crossdock.rootfs.elf import ELF_MAGIC

__all__ = ["HEAD_SIZE", "BinaryKind", "classify", "describe_macho", "pe_header_offset"]

# Enough for the ELF identification, any Mach-O header and a DOS stub's e_lfanew.
HEAD_SIZE = 64


class BinaryKind(StrEnum):
    ELF = "elf"
    MACHO = "mach-o"
    PE = "pe"
    OTHER = "other"


# Mach-O magics as the first 4 bytes read big-endian: thin 32/64-bit in both byte orders, and
# the universal ("fat") headers, which are always big-endian on disk (32- and 64-bit offsets).
_MACHO_THIN = {0xFEEDFACE, 0xCEFAEDFE, 0xFEEDFACF, 0xCFFAEDFE}
_MACHO_FAT = {0xCAFEBABE, 0xCAFEBABF, 0xBEBAFECA, 0xBFBAFECA}
# 0xCAFEBABE is also a Java class file; there bytes 4..8 are (minor, major >= 45), while a fat
# Mach-O has the architecture count there (a handful). `file` tells them apart the same way.
_MAX_FAT_ARCHS = 30
_MACHO_CPU = {0x01000007: "x86_64", 0x0100000C: "arm64", 7: "i386", 12: "arm"}


def classify(head: bytes) -> BinaryKind:
    if head.startswith(ELF_MAGIC):
        return BinaryKind.ELF
    if len(head) >= 8:
        magic = int.from_bytes(head[:4], "big")
        if magic in _MACHO_THIN:
            return BinaryKind.MACHO
        if magic in _MACHO_FAT and int.from_bytes(head[4:8], "big") < _MAX_FAT_ARCHS:
            return BinaryKind.MACHO
    if head.startswith(b"MZ") and pe_header_offset(head) is not None:
        return BinaryKind.PE
    return BinaryKind.OTHER


def pe_header_offset(head: bytes) -> int | None:
    """Offset of the ``PE\\0\\0`` signature a DOS header points to, if it is within ``head``.

    ``MZ`` alone is two printable letters; the PE signature at ``e_lfanew`` is what makes a file
    a Windows binary.
    """
    if len(head) < 0x40 or not head.startswith(b"MZ"):
        return None
    offset = int.from_bytes(head[0x3C:0x40], "little")
    if head[offset : offset + 4] == b"PE\0\0":
        return offset
    return None


def describe_macho(head: bytes) -> str:
    magic = int.from_bytes(head[:4], "big")
    if magic in _MACHO_FAT:
        return "Mach-O universal binary"
    little = magic in (0xCEFAEDFE, 0xCFFAEDFE)
    cpu = int.from_bytes(head[4:8], "little" if little else "big")
    return f"Mach-O {_MACHO_CPU.get(cpu, hex(cpu))} (macOS)"
