"""``crossdock rebase IMAGE --base NEWBASE`` and ``crossdock rebase --check IMAGE...``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import AllowOpt, JsonOpt, TargetOpt, out_console, progress

if TYPE_CHECKING:
    from crossdock.registry.reference import Mirrors, Reference


@app.command()
def rebase(
    images: Annotated[
        list[str], typer.Argument(help="Image(s) built by crossdock: REGISTRY/REPO:TAG.")
    ],
    base: Annotated[
        str | None, typer.Option("--base", help="The new base image (REGISTRY/REPO:TAG).")
    ] = None,
    push: Annotated[
        list[str] | None,
        typer.Option(
            "--push", help="Push the rebased image here (REGISTRY/REPO[:TAG]); repeatable."
        ),
    ] = None,
    oci_layout: Annotated[
        Path | None, typer.Option("--oci-layout", help="Also write an OCI image layout folder.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Only list which images' bases moved (recorded vs the base tag now)."
        ),
    ] = False,
    target: TargetOpt = None,
    allow: AllowOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Move IMAGE onto a new version of its base: the new base's layers under the image's own,
    config and base annotations updated, refused when the Python minor differs or the new glibc
    is older than the image's binaries need, every check run again, pushed with the release
    rules of a build (and a fresh SBOM). With --check, list which images' bases have moved."""
    from crossdock.config import machine_settings
    from crossdock.errors import ConfigError
    from crossdock.transports import registry_image

    settings = machine_settings()
    mirrors = settings.registry_mirrors
    references = [registry_image(i) for i in images]
    if check:
        _check(references, mirrors, json_output)
        return
    if base is None or len(references) != 1:
        raise ConfigError(
            "rebase needs one IMAGE and --base NEWBASE",
            hint="crossdock rebase REGISTRY/REPO:TAG --base REGISTRY/BASE:TAG [--push REPO:TAG]; "
            "--check takes several images",
        )
    from crossdock.cache import CacheLayout
    from crossdock.cli.push_cmd import publish, render_release
    from crossdock.publish.pipeline import prepare_release
    from crossdock.rebase import rebase as run_rebase
    from crossdock.sinks import write_oci_layout

    # Destinations are checked before anything is pulled.
    destinations = []
    for to in push or []:
        _, publishing = prepare_release(None, to=to, progress=progress)
        if publishing is not None:
            destinations.append(publishing)
    progress(None, f"rebase {references[0]} onto {base}")
    # The rebased images' layers are files of the blob cache, written and pushed after the
    # rebase returned: a `crossdock cache prune` waits for all of it (the cache's lock, shared).
    with CacheLayout(settings.cache_dir).in_use():
        result = run_rebase(
            references[0],
            registry_image(base, what="--base is"),
            cache_dir=settings.cache_dir,
            mirrors=mirrors,
            allow=tuple(allow or ()),
            target=target,
        )
        for rebased in result.platforms:
            progress(
                rebased.platform,
                f"{rebased.old_digest} -> {rebased.image.digest} (base {rebased.old_base} -> "
                f"{rebased.new_base}; python {rebased.python_version}, glibc "
                f"{rebased.glibc_available} >= {rebased.glibc_required or 'none needed'}; "
                "verified)",
            )
        if oci_layout is not None:
            write_oci_layout(result.image_set, oci_layout)
            progress(None, f"OCI layout written to {oci_layout}")
        # The same release code as a build's; the target's rules already ran on this image set.
        releases = [
            publish(replace(p, target=result.target), result.image_set, checked=True)
            for p in destinations
        ]
    if json_output:
        out = result.to_json()
        out["push"] = [r.to_json() for r in releases]
        out_console.print_json(json.dumps(out))
        return
    if result.image_set.index is not None:
        out_console.print(f"index {result.image_set.index.digest}")
    for rebased in result.platforms:
        out_console.print(f"{rebased.platform} {rebased.image.digest}", highlight=False)
    for release in releases:
        render_release(release)


def _check(references: list[Reference], mirrors: Mirrors, json_output: bool) -> None:
    from crossdock.rebase import check_bases

    checks = check_bases(references, mirrors=mirrors)
    if json_output:
        out_console.print_json(json.dumps([c.to_json() for c in checks]))
        return
    for c in checks:
        state = {True: "MOVED", False: "current", None: "unknown"}[c.moved]
        detail = (
            f"base {c.base}: recorded {c.recorded}, now {c.current}"
            if c.base
            else "no base recorded"
        )
        out_console.print(f"{state:8} {c.image} {c.platform}  {detail}", highlight=False)
