"""Point console scripts at the image's Python instead of the host interpreter uv ran with.

uv writes console scripts with the host interpreter in the shebang: either ``#!/host/python`` or,
for paths too long for the kernel, a ``#!/bin/sh`` trampoline whose second line is
``'''exec' '/host/python' "$0" "$@"``. In the image neither path exists.

Each wheel's ``RECORD`` lists its scripts with their hash and size; it is updated for the
rewritten scripts, both because RECORD should describe the installed files and because the host
path it hashed (a checkout's ``.venv``) would make the layer differ from one machine to another.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from pathlib import Path

from crossdock.cache import rewrite_file
from crossdock.errors import ResolveError

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
            rewrite_file(path, new_content)
            changed.append(path)
    if changed:
        _update_records(bin_dir.parent, changed)
    return tuple(changed)


def _record_hash(data: bytes) -> str:
    # PEP 376 and the wheel spec: urlsafe base64 of the digest, without padding.
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _update_records(root: Path, changed: list[Path]) -> None:
    """Give the rewritten scripts their new hash and size in every RECORD that lists them."""
    by_name = {path.relative_to(root).as_posix(): path for path in changed}
    for record in sorted(root.glob("*.dist-info/RECORD")):
        try:
            rows = list(csv.reader(io.StringIO(record.read_text(encoding="utf-8"))))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ResolveError(
                f"cannot read {record.relative_to(root)} to update the scripts it lists: {reason}",
                hint="the installed wheel is damaged; rebuild it or report it to its project",
            ) from err
        touched = False
        for row in rows:
            if len(row) >= 3 and row[0] in by_name:
                data = by_name[row[0]].read_bytes()
                row[1:3] = [_record_hash(data), str(len(data))]
                touched = True
        if touched:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows)
            rewrite_file(record, out.getvalue().encode())
