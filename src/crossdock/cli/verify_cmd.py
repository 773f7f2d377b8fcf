"""``crossdock verify IMAGE``: check every native binary of any image, however it was built."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crossdock.cli import app
from crossdock.cli.common import (
    AllowOpt,
    JsonOpt,
    PlatformOpt,
    QuietOpt,
    TargetOpt,
    VerboseOpt,
    out_console,
    progress,
)

if TYPE_CHECKING:
    from crossdock.image.artifact import ImageSet, PlatformImage
    from crossdock.transports import ImageName
    from crossdock.verify import PlatformReport


@app.command()
def verify(
    image: Annotated[
        str,
        typer.Argument(
            help="docker://REF (or a bare REF), oci:DIR[:TAG], oci-archive:FILE[:TAG], "
            "docker-archive:FILE[:REF], docker-daemon:REF, or a bare layout folder / tarball."
        ),
    ],
    platform: PlatformOpt = None,
    allow: AllowOpt = None,
    json_output: JsonOpt = False,
    target: TargetOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Verify each platform of IMAGE: ELF machine/class/endianness, glibc and GLIBCXX needs,
    wheel tags, extension suffixes and bytecode against the image's own platform and Python,
    each layer against the diff_id its config names (uncompressed digest), and that what the
    image runs (its program, the modules it imports) exists in it.
    With --target lambda, also what Lambda refuses at deploy time (an index, media types,
    non-gzip layers, hardlinks, missing parent directories, size, the handler, architecture).
    Exits 0 when every platform passes, 6 when any check fails."""
    from crossdock.config import machine_settings
    from crossdock.platform import parse_platforms
    from crossdock.progress import step
    from crossdock.sources import open_images
    from crossdock.targets import target_spec
    from crossdock.transports import parse_image_name
    from crossdock.verify import render_reports, reports_to_json

    preflight = target is not None and target_spec(target).lambda_preflight
    platforms = parse_platforms(",".join(platform)) if platform else ()
    settings = machine_settings()
    cache_dir, mirrors = settings.cache_dir, settings.registry_mirrors
    name = parse_image_name(image)
    reports = []
    with (
        progress.shown(quiet=quiet),
        open_images(
            name, platforms=platforms, cache_dir=cache_dir, mirrors=mirrors, progress=progress
        ) as image_sets,
    ):
        for image_set in image_sets:
            for one in image_set.images:
                with step(progress, one.platform, "verify") as verifying:
                    report = _verify_one(
                        name, image_set, one, allow or [], cache_dir, preflight=preflight
                    )
                    verifying.describe(_outcome(report))
                reports.append(report)
    if json_output:
        out_console.print_json(json.dumps(reports_to_json(reports)))
    else:
        render_reports(reports, out_console, verbose=verbose)
    if not all(report.passed for report in reports):
        sys.exit(6)  # VerificationError.exit_code: the same code `crossdock build` uses


def _outcome(report: PlatformReport) -> str:
    files = report.counts.get("files", 0)
    if report.passed:
        return f"{files} files checked, passed"
    return f"{files} files checked, {len(report.failures)} failures"


def _verify_one(
    name: ImageName,
    image_set: ImageSet,
    image: PlatformImage,
    allow: list[str],
    cache_dir: Path,
    *,
    preflight: bool,
) -> PlatformReport:
    from crossdock.sources import image_label
    from crossdock.verify import verify_platform_image

    label = image_label(name, image)
    report = verify_platform_image(
        image,
        allow=tuple(allow or ()),
        # What the index (or the layout's index.json) that lists the image says it is.
        declared_platform=image.listed.platform if image.listed else None,
        image_name=label,
        # Layer indexes and file facts cached by layer digest: a second verify of
        # the same layers reads no layer bytes (the checks themselves always run).
        cache_dir=cache_dir,
    )
    if preflight:
        report = _with_lambda_preflight(name, label, image_set, image, report, allow, cache_dir)
    return report


def _with_lambda_preflight(
    name: ImageName,
    label: str,
    image_set: ImageSet,
    image: PlatformImage,
    report: PlatformReport,
    allow: list[str],
    cache_dir: Path,
) -> PlatformReport:
    from crossdock.errors import ConfigError
    from crossdock.transports import DockerArchive, DockerDaemon
    from crossdock.verify.lambda_preflight import (
        PreflightImage,
        PreflightLayer,
        add_to_report,
        lambda_preflight,
    )

    if isinstance(name, DockerArchive | DockerDaemon):
        raise ConfigError(
            f"{label}: a docker save tarball keeps neither the manifest nor the layers' "
            "compression that Lambda would see",
            hint="check the pushed image (a registry reference) or an OCI layout "
            "(skopeo copy docker-daemon:IMAGE oci:DIR)",
        )
    manifest = image.manifest
    findings, notes = lambda_preflight(
        PreflightImage(
            manifest_media_type=manifest.media_type,
            config_media_type=manifest.config.media_type,
            config=image.config,
            layers=tuple(
                PreflightLayer(blob.descriptor.media_type, blob.descriptor.digest, blob.path)
                for blob in image.layers
            ),
            # The reference (or layout entry) names an index above the manifest.
            behind_index=image_set.index is not None,
        ),
        index_cache=cache_dir,
    )
    return add_to_report(report, findings, notes, allow)
