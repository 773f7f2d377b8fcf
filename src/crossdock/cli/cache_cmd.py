"""``crossdock cache``: what the cache folder holds by kind, and ``crossdock cache prune``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import JsonOpt, err_console, out_console
from crossdock.errors import ConfigError

cache_app = typer.Typer(
    name="cache",
    help="Show the cache's size by kind (no subcommand), or prune it.",
    invoke_without_command=True,
    add_completion=False,
)
app.add_typer(cache_app)

CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir", help="The cache folder (default: CROSSDOCK_CACHE_DIR, ~/.cache/crossdock)."
    ),
]


def _cache_dir(option: Path | None) -> Path:
    if option is not None:
        return option
    from crossdock.config import machine_settings

    return machine_settings().cache_dir


def _mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def _age(now: float, then: float | None) -> str:
    if then is None:
        return "-"
    days = (now - then) / 86400
    return f"{days:.1f} d" if days >= 1 else f"{(now - then) / 3600:.1f} h"


@cache_app.callback()
def show(ctx: typer.Context, cache_dir: CacheDirOpt = None, json_output: JsonOpt = False) -> None:
    """Show what the cache holds: entries, size on disk and last use, per kind."""
    if ctx.invoked_subcommand is not None:
        return
    from crossdock.cacheusage import usage

    root = _cache_dir(cache_dir)
    kinds = usage(root)
    if json_output:
        out_console.print_json(
            json.dumps(
                {
                    "cache_dir": str(root),
                    "total_bytes": sum(k.size for k in kinds),
                    "kinds": [
                        {
                            "kind": k.kind,
                            "entries": k.entries,
                            "bytes": k.size,
                            "oldest_use": k.oldest,
                            "newest_use": k.newest,
                        }
                        for k in kinds
                    ],
                }
            )
        )
        return
    now = time.time()
    out_console.print(f"cache {root}", highlight=False)
    rows = [("KIND", "ENTRIES", "SIZE", "LEAST RECENT USE", "MOST RECENT USE")] + [
        (k.kind, str(k.entries), _mib(k.size), _age(now, k.oldest), _age(now, k.newest))
        for k in kinds
    ]
    rows.append(
        ("total", str(sum(k.entries for k in kinds)), _mib(sum(k.size for k in kinds)), "", "")
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        out_console.print("  ".join(cells).rstrip(), highlight=False)


@cache_app.command()
def prune(
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Remove entries unused for longer (30d, 12h, 2w)."),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size", help="Then remove the least recently used until at most this (5G)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
    cache_dir: CacheDirOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Remove cache entries by age and/or to a size, least recently used first (a removed entry
    is rebuilt when a build needs it again; builds using the cache are waited for)."""
    from crossdock.cacheusage import parse_age, parse_size
    from crossdock.cacheusage import prune as prune_cache

    if older_than is None and max_size is None:
        raise ConfigError("prune needs a limit", hint="pass --older-than 30d and/or --max-size 5G")
    try:
        age = parse_age(older_than) if older_than is not None else None
        size = parse_size(max_size) if max_size is not None else None
    except ValueError as err:
        raise ConfigError(str(err), hint="ages: 30d, 12h, 2w; sizes: 500M, 5G") from None
    root = _cache_dir(cache_dir)
    removed = prune_cache(
        root,
        older_than=age,
        max_size=size,
        dry_run=dry_run,
        on_wait=lambda: err_console.print(
            f"waiting for the builds using {root} to end", highlight=False
        ),
    )
    freed = sum(e.size for e in removed)
    if json_output:
        out_console.print_json(
            json.dumps(
                {
                    "cache_dir": str(root),
                    "dry_run": dry_run,
                    "removed": [
                        {"kind": e.kind, "path": str(e.path), "bytes": e.size} for e in removed
                    ],
                    "freed_bytes": freed,
                }
            )
        )
        return
    verb = "would remove" if dry_run else "removed"
    err_console.print(f"{verb} {len(removed)} entries, {_mib(freed)}, from {root}", highlight=False)
