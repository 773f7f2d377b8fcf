"""A release's CLI side, without typer (``crossdock build`` answered from its record pushes
through it too): the release with the command's notes and progress, and its report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crossdock.cli.console import err_console, lines_console, out_console, progress
from crossdock.text import literal

if TYPE_CHECKING:
    from crossdock.image.artifact import ImageSet
    from crossdock.publish.pipeline import Publishing
    from crossdock.publish.release import ReleaseResult

__all__ = ["publish", "render_release"]


def publish(
    publishing: Publishing, image_set: ImageSet, *, checked: bool = False, read_first: bool = False
) -> ReleaseResult:
    """``publish.pipeline.release`` with the CLI's notes and upload progress. ``read_first``:
    first ask, without the HTTP stack, whether the registry holds it all already
    (``release_if_present``; a build answered from its record)."""
    from crossdock.publish.pipeline import release, release_if_present

    def on_note(note: str) -> None:
        lines_console(err_console).print(f"[yellow]note:[/] {literal(note)}", highlight=False)

    if read_first:
        present = release_if_present(
            publishing, image_set, checked=checked, progress=progress, on_note=on_note
        )
        if present is not None:
            return present
    # The upload is a step of ``progress`` (bytes and rate), drawn by the command's view.
    return release(publishing, image_set, checked=checked, progress=progress, on_note=on_note)


def render_release(result: ReleaseResult) -> None:
    """The tag table and transfer counts, for people."""
    plan = result.plan
    where = plan.where + (f"  env {plan.env}" if plan.env else "")
    if plan.git is not None:
        dirty = {True: ", dirty tree", False: "", None: ", tree not checked"}[plan.git.dirty]
        where += f"  commit {plan.git.sha}{dirty}"
    title = ("DRY RUN: would push to " if result.report is None else "pushed to ") + where
    # Off a terminal, printed without importing rich (a build answered from its record).
    out = lines_console(out_console)
    out.print(literal(title), highlight=False, soft_wrap=True)
    # Each digest once, whole and copyable (an 80-column line: "  arm64  sha256:<64 hex>"),
    # then the tags that point to it and what happened to each.
    by_digest: dict[str, list[tuple[str, str]]] = {}
    labels: dict[str, str] = {}
    for planned in plan.tags:
        digest = str(planned.digest)
        by_digest.setdefault(digest, []).append((planned.tag, result.tag_status(planned.tag)))
        labels[digest] = _short_label(planned.points_to)
    label_width = max((len(label) for label in labels.values()), default=0)
    for digest, tags in by_digest.items():
        line = f"  {labels[digest].ljust(label_width)}  {digest}"
        out.print(literal(line), highlight=False, soft_wrap=True)
        tag_width = max(len(tag) for tag, _ in tags)
        for tag, status in tags:
            line = f"      {tag.ljust(tag_width)}  {status}"
            out.print(literal(line), highlight=False, soft_wrap=True)
    report = result.report
    if report is None:
        blobs, size = plan.blob_totals()
        out.print(f"nothing pushed; up to {blobs} blobs ({_mib(size)}) would be sent")
    else:
        out.print(
            f"{report.blobs_uploaded} blobs uploaded ({_mib(report.bytes_uploaded)}), "
            f"{report.blobs_mounted} mounted, {report.blobs_present} present; "
            f"{len(report.tags) - len(report.tags_unchanged)} tags set, "
            f"{len(report.tags_unchanged)} unchanged",
            highlight=False,
        )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _short_label(points_to: str) -> str:
    """``linux/arm64/v8`` -> ``arm64``; ``index`` stays."""
    parts = points_to.split("/")
    return parts[1] if len(parts) >= 2 else points_to
