"""Binary kinds told apart by their first bytes: ELF, Mach-O (thin and fat, not a Java class
file), PE (not a text starting with "MZ")."""

from __future__ import annotations

import struct

from crossdock.verify.magic import BinaryKind, classify, describe_macho
from tests.support.layertar import fixture_bytes


def test_classify_by_magic():
    assert classify(fixture_bytes("aarch64-puts.so")[:64]) is BinaryKind.ELF
    macho = fixture_bytes("macos-arm64-head.bin")
    assert classify(macho[:64]) is BinaryKind.MACHO
    assert describe_macho(macho) == "Mach-O arm64 (macOS)"
    assert classify(fixture_bytes("win-amd64-pyd-head.bin")) is BinaryKind.PE
    # A universal (fat) Mach-O header with 2 architectures.
    fat = struct.pack(">II", 0xCAFEBABE, 2) + b"\0" * 56
    assert classify(fat) is BinaryKind.MACHO
    # A Java class file shares 0xCAFEBABE, then minor 0, major 52: not Mach-O.
    java = struct.pack(">IHH", 0xCAFEBABE, 0, 52) + b"\0" * 56
    assert classify(java) is BinaryKind.OTHER
    # "MZ" alone (a text file starting with those letters) is not a PE file.
    assert classify(b"MZ is a text file" + b" " * 100) is BinaryKind.OTHER
    assert classify(b"#!/bin/sh\n") is BinaryKind.OTHER
