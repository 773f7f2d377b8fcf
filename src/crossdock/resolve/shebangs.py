"""Point console scripts at the image's Python instead of the host interpreter uv ran with.

uv writes console scripts with the host interpreter in the shebang: either ``#!/host/python`` or,
for paths too long for the kernel, a ``#!/bin/sh`` trampoline whose second line is
``'''exec' '/host/python' "$0" "$@"``. In the image neither path exists.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["rewrite_shebangs"]

# A first line naming a Python: `#!/x/python`, `#!/x/python3.13`, `#!/usr/bin/env python3`.
_PYTHON_SHEBANG = re.compile(rb"^#!\s*\S*?(?:/|env\s+)python[0-9.]*(?:\s.*)?$")
# uv's (and pip's) trampoline for long interpreter paths.
_SH_TRAMPOLINE = re.compile(rb"^'''exec' .*python[0-9.]*['\"]? .*$")

# Console scripts are small; anything bigger is not one and is left alone.
_MAX_SCRIPT_BYTES = 1 << 20


def _rewritten(content: bytes, shebang: bytes) -> bytes | None:
    first, _, rest = content.partition(b"\n")
    if _PYTHON_SHEBANG.match(first):
        return shebang + b"\n" + rest
    if first.strip() == b"#!/bin/sh":
        second, _, after = rest.partition(b"\n")
        if _SH_TRAMPOLINE.match(second):
            # The trampoline's third line closes the string that hides it from Python: `' '''`.
            third, _, body = after.partition(b"\n")
            if third.strip() == b"' '''":
                return shebang + b"\n" + body
    return None


def rewrite_shebangs(bin_dir: Path, python_path: str) -> tuple[Path, ...]:
    """Rewrite the shebang of every Python script in ``bin_dir`` to ``#!python_path``.

    Returns the files changed (sorted). Binaries, symlinks and non-Python scripts are left as
    they are; file modes are kept.
    """
    if not python_path.startswith("/") or any(ch.isspace() for ch in python_path):
        raise ValueError(
            f"the image's Python must be an absolute path without spaces: {python_path!r}"
        )
    if not bin_dir.is_dir():
        return ()
    shebang = b"#!" + python_path.encode()
    changed: list[Path] = []
    for path in sorted(bin_dir.iterdir()):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_SCRIPT_BYTES:
            continue
        content = path.read_bytes()
        new_content = _rewritten(content, shebang)
        if new_content is not None and new_content != content:
            path.write_bytes(new_content)  # write_bytes keeps the existing mode
            changed.append(path)
    return tuple(changed)
