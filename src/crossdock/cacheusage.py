"""What crossdock's cache folder holds, by kind, and pruning it by age or size, so the caches that
make builds fast do not fill disks (``crossdock cache``).

A kind is a top-level folder of the cache (``blobs``, ``deps``, ``records``, ``verify``, ...);
its entries are what one cache key names: a blob file, an installed dependency tree, a record.
Folders that only group entries (``blobs/sha256/``, ``records/<kind>/``, ``verify/index/``) are
looked through; ``records/<kind>`` and ``verify/<kind>`` are reported as kinds of their own.
An entry's last use is the latest access or modification time of its files (file systems
mounted ``relatime`` update access times about once a day: enough for ages counted in days)
and the latest modification time of its folders.

Pruning removes whole entries, least recently used first; every cache reader treats a missing
entry as a miss and rebuilds it, so pruning costs speed, never correctness. An entry removed
under a running build would make that build fail, so a prune waits for the builds using the
cache to end (``crossdock.cachelock``, held by every command while it uses the cache's entries:
``CacheLayout.in_use``), and those started meanwhile wait for the prune.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from crossdock.cachelock import IN_USE_LOCK, locked

__all__ = ["CacheEntry", "KindUsage", "cache_entries", "parse_age", "parse_size", "prune", "usage"]

# Top-level folders whose children only group entries: by algorithm (blobs/sha256/), by the
# first two hex digits of a key (bytecode/ab/), or by what they record (records/<kind>/,
# verify/index/): True where each group is reported as a kind of its own.
_GROUPING = {"blobs": False, "bytecode": False, "records": True, "verify": True}
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class CacheEntry:
    kind: str
    path: Path
    size: int
    last_used: float  # seconds since the epoch


@dataclass(frozen=True)
class KindUsage:
    kind: str
    entries: int
    size: int
    oldest: float | None
    newest: float | None


def cache_entries(root: Path) -> Iterator[CacheEntry]:
    """Every entry of the cache under ``root``, with its size and last use."""
    if not root.is_dir():
        return
    for top in sorted(root.iterdir()):
        if top.name == IN_USE_LOCK:
            continue  # the builds' lock, not an entry
        if not top.is_dir() or top.is_symlink():
            if top.is_file():
                yield _entry(top.name, top)
            continue
        if top.name in _GROUPING:
            for group in sorted(top.iterdir()):
                kind = f"{top.name}/{group.name}" if _GROUPING[top.name] else top.name
                if group.is_dir() and not group.is_symlink():
                    for child in sorted(group.iterdir()):
                        yield _entry(kind, child)
                else:
                    yield _entry(kind, group)
        else:
            for child in sorted(top.iterdir()):
                yield _entry(top.name, child)


def _entry(kind: str, path: Path) -> CacheEntry:
    size = 0
    last_used = 0.0
    for st in _stats(path):
        size += st.st_blocks * 512 if st.st_blocks else st.st_size
        # A folder's access time moves whenever it is listed (this module lists them): only
        # its modification time counts; a file's access time is a build reading it.
        used = st.st_mtime if stat.S_ISDIR(st.st_mode) else max(st.st_atime, st.st_mtime)
        last_used = max(last_used, used)
    return CacheEntry(kind, path, size, last_used)


def _stats(path: Path) -> Iterator[os.stat_result]:
    try:
        st = path.lstat()
    except OSError:
        return
    yield st
    if stat.S_ISDIR(st.st_mode):
        for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
            for name in (*dirnames, *filenames):
                try:
                    yield Path(dirpath, name).lstat()
                except OSError:
                    continue


def usage(root: Path) -> list[KindUsage]:
    """Entries, bytes on disk, and the oldest and newest last use, per kind."""
    by_kind: dict[str, list[CacheEntry]] = {}
    for entry in cache_entries(root):
        by_kind.setdefault(entry.kind, []).append(entry)
    return [
        KindUsage(
            kind,
            len(entries),
            sum(e.size for e in entries),
            min(e.last_used for e in entries),
            max(e.last_used for e in entries),
        )
        for kind, entries in sorted(by_kind.items())
    ]


def prune(
    root: Path,
    *,
    older_than: float | None = None,
    max_size: int | None = None,
    dry_run: bool = False,
    now: float | None = None,
    on_wait: Callable[[], object] | None = None,
) -> list[CacheEntry]:
    """Remove entries unused for more than ``older_than`` seconds, then the least recently
    used ones until the cache holds at most ``max_size`` bytes. Returns what was removed (or,
    with ``dry_run``, what would be). Waits for the builds using the cache to end first
    (``on_wait`` is told when there are some); a dry run waits for none."""
    if dry_run:
        return _prune(root, older_than, max_size, dry_run=True, now=now)
    with locked(root, exclusive=True, on_wait=on_wait):
        return _prune(root, older_than, max_size, dry_run=False, now=now)


def _prune(
    root: Path,
    older_than: float | None,
    max_size: int | None,
    *,
    dry_run: bool,
    now: float | None,
) -> list[CacheEntry]:
    now = time.time() if now is None else now
    entries = sorted(cache_entries(root), key=lambda e: e.last_used)
    doomed: list[CacheEntry] = []
    kept: list[CacheEntry] = []
    for entry in entries:
        if older_than is not None and now - entry.last_used > older_than:
            doomed.append(entry)
        else:
            kept.append(entry)
    if max_size is not None:
        total = sum(e.size for e in kept)
        for entry in list(kept):  # oldest first
            if total <= max_size:
                break
            doomed.append(entry)
            kept.remove(entry)
            total -= entry.size
    if not dry_run:
        for entry in doomed:
            _remove(entry.path)
    return doomed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5g``, ``1048576`` -> bytes (binary units)."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    return int(_quantity(text, value, _UNITS, "", "a size (e.g. 500M, 2G)"))


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``2w``, ``90m``, ``3600`` (seconds) -> seconds."""
    return _quantity(text, text.strip().lower(), _AGE_UNITS, "s", "an age (e.g. 30d, 12h, 2w)")


def _quantity(
    text: str, value: str, units: Mapping[str, float], default_unit: str, what: str
) -> float:
    """``value`` (``text`` normalised): a number, then a letter of ``units`` (none:
    ``default_unit``), as that unit's count; ValueError names ``what`` was expected."""
    suffix = value[-1:]
    unit, number = (suffix, value[:-1]) if suffix and suffix in units else (default_unit, value)
    try:
        quantity = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"{text!r} is not {what}") from None
    if quantity < 0:
        raise ValueError(f"{text!r} is not {what}")
    return quantity
