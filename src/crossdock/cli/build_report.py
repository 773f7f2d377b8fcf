"""The build report for people: a few lines per platform that fit 80 columns.

Digests stay whole (they are copied into other commands); the wheel list is summed up unless
``--verbose`` asks for it (``--json`` always has everything).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from crossdock.cli.console import lines_console, out_console
from crossdock.cli.progress_view import human_bytes
from crossdock.text import literal

if TYPE_CHECKING:
    from rich.console import Console

    from crossdock.backends.base import BuildOutcome, BuildReport
    from crossdock.publish.release import ReleaseResult

__all__ = ["render_build", "report_build"]

_INDENT = "  "


def report_build(
    outcome: BuildOutcome, json_output: bool, release: ReleaseResult | None, *, verbose: bool
) -> None:
    """A build's result on stdout: JSON (``--json``), or the report for people."""
    if json_output:
        lines_console(out_console).print_json(
            json.dumps(
                {
                    "digest": str(outcome.digest),
                    "index": str(outcome.image_set.index.digest)
                    if outcome.image_set.index
                    else None,
                    "platforms": [r.to_json() for r in outcome.reports],
                    "push": release.to_json() if release else None,
                }
            )
        )
        return
    # Off a terminal, printed without importing rich (a build answered from its record).
    render_build(outcome, lines_console(out_console), verbose=verbose)
    if release is not None:
        from crossdock.cli.release_report import render_release

        render_release(release)


def render_build(outcome: BuildOutcome, console: Console, *, verbose: bool = False) -> None:
    for report in outcome.reports:
        for line in _platform_lines(report, console.width, verbose=verbose):
            console.print(line, highlight=False, soft_wrap=True)
    if outcome.image_set.index is not None:
        console.print(f"index {outcome.image_set.index.digest}", highlight=False, soft_wrap=True)


def _platform_lines(report: BuildReport, width: int, *, verbose: bool) -> list[str]:
    verification = report.verification
    counts = verification.counts if verification is not None else {}
    # The files the build added, each checked (the base's were checked once per digest).
    checked = counts.get("files", sum(counts.values()))
    total = report.timings.get("total", 0.0)
    lines = [
        f"[bold]{report.platform}[/]  built in {total:.1f}s, verified ({checked} files checked)",
        f"{_INDENT}image   {report.image_digest}",
        (
            f"{_INDENT}base    python {report.python_version}, glibc {report.glibc_version}, "
            f"wheels for {literal(report.python_platform)}"
        ),
    ]
    layers = ", ".join(
        f"{layer.role} {human_bytes(layer.size)}" + (" (cached)" if layer.cached else "")
        for layer in report.layers
    )
    lines.append(f"{_INDENT}layers  {layers}")
    lines.extend(_wheel_lines(report, width, verbose=verbose))
    if report.local_packages:
        # The service's own packages (workspace members, path dependencies), built here.
        own = ", ".join(f"{w.name}=={w.version}" for w in report.local_packages)
        lines.append(f"{_INDENT}own     {literal(own)} (built here)")
    return lines


def _wheel_lines(report: BuildReport, width: int, *, verbose: bool) -> list[str]:
    wheels = sorted(report.wheels, key=lambda w: w.name)
    native = [w for w in wheels if not all(tag.endswith("-any") for tag in w.tags)]
    sdists = [w for w in wheels if w.built_from_sdist]
    head = f"{_INDENT}wheels  {len(wheels)}, {len(native)} with native code"
    if sdists:
        head += f", {len(sdists)} built from sdists"
    if verbose:
        # One per line: name==version and its tags, whole (rich markup escaped: "[py3-none-any]").
        return [
            head,
            *(
                f"{_INDENT * 3}{literal(w.name)}=={literal(w.version)}  "
                f"{literal('.'.join(w.tags))}" + ("  (from sdist)" if w.built_from_sdist else "")
                for w in wheels
            ),
        ]
    if not native:
        return [head]
    names = ", ".join(w.name for w in native)
    room = max(width - len(head) - 4, 20)
    if len(names) > room:
        names = names[: room - 3].rsplit(", ", 1)[0] + ", ..."
    return [f"{head}: {literal(names)}", f"{_INDENT * 5}(--verbose lists every wheel)"]
