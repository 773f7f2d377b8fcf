"""``crossdock sbom IMAGE``: print the SBOM attached to an image's platform manifest."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import PlatformOpt, err_console


@app.command()
def sbom(
    image: Annotated[
        str, typer.Argument(help="A registry reference (REGISTRY/REPO:TAG) or oci:DIR[:TAG].")
    ],
    platform: PlatformOpt = None,
) -> None:
    """Print the CycloneDX 1.6 JSON SBOM crossdock attached to IMAGE's manifest for one
    platform (an OCI 1.1 referrer; from the referrers API or its fallback tag)."""
    from crossdock.config import machine_settings
    from crossdock.errors import ConfigError, NotFoundError
    from crossdock.platform import parse_platforms
    from crossdock.sbom.fetch import find_sboms

    platforms = parse_platforms(",".join(platform)) if platform else ()
    found = find_sboms(image, platforms=platforms, mirrors=machine_settings().registry_mirrors)
    if not found:
        wanted = ", ".join(str(p) for p in platforms) or "any platform"
        raise NotFoundError(
            f"{image} has no SBOM attached for {wanted}",
            hint="images built by crossdock's native backend carry one per platform",
        )
    if len(found) > 1:
        raise ConfigError(
            f"{image} has SBOMs for {', '.join(str(f.platform) for f in found)}",
            hint="choose one with --platform",
        )
    (chosen,) = found
    err_console.print(
        f"[cyan]sbom[/] {chosen.platform} image {chosen.subject} (sbom {chosen.artifact})",
        highlight=False,
    )
    sys.stdout.buffer.write(chosen.document + b"\n")
    sys.stdout.flush()
