"""``crossdock verify IMAGE``: check every native binary of any image, however it was built."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import AllowOpt, JsonOpt, PlatformOpt, err_console, out_console


@app.command()
def verify(
    image: Annotated[
        str,
        typer.Argument(
            help="A registry reference, an OCI layout folder, or a `docker save` tarball."
        ),
    ],
    platform: PlatformOpt = None,
    allow: AllowOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Verify each platform of IMAGE: ELF machine/class/endianness, glibc and GLIBCXX needs,
    wheel tags, extension suffixes and bytecode against the image's own platform and Python.
    Exits 0 when every platform passes, 6 when any check fails."""
    from crossdock.config import default_cache_dir
    from crossdock.platform import parse_platforms
    from crossdock.registry.reference import Mirrors
    from crossdock.verify import render_reports, reports_to_json, verify_image
    from crossdock.verify.sources import open_images

    platforms = parse_platforms(",".join(platform)) if platform else ()
    cache_dir = Path(os.environ.get("CROSSDOCK_CACHE_DIR") or default_cache_dir())
    mirrors = Mirrors.parse(os.environ.get("CROSSDOCK_REGISTRY_MIRRORS", ""))
    reports = []
    with open_images(image, platforms=platforms, cache_dir=cache_dir, mirrors=mirrors) as images:
        for loaded in images:
            err_console.print(f"[cyan]verify[/] {loaded.name}", highlight=False)
            reports.append(
                verify_image(
                    loaded.config,
                    loaded.layer_paths,
                    layer_digests=loaded.layer_digests,
                    allow=tuple(allow or ()),
                    declared_platform=loaded.declared_platform,
                    image_name=loaded.name,
                    # Layer indexes and file facts cached by layer digest: a second verify of
                    # the same layers reads no layer bytes (the checks themselves always run).
                    cache_dir=cache_dir / "verify",
                )
            )
    if json_output:
        out_console.print_json(json.dumps(reports_to_json(reports)))
    else:
        render_reports(reports, out_console)
    if not all(report.passed for report in reports):
        sys.exit(6)  # VerificationError.exit_code: the same code `crossdock build` uses
