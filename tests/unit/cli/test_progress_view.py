"""How progress prints: one line per finished step off a terminal, live lines collapsing to
summaries on one, warnings only with --quiet."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from crossdock.cli.progress_view import ProgressView, human_bytes
from crossdock.platform import AMD64, ARM64
from crossdock.progress import NO_PROGRESS, step


def _console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=80, color_system=None), out


def test_off_a_terminal_one_line_per_step_with_its_duration():
    console, out = _console(terminal=False)
    with ProgressView(console, live=False) as view:
        with step(view, ARM64, "pull base", total=0) as pulling:
            pulling.add_total(3 * 1024 * 1024)
            for _ in range(3):
                pulling.advance(1024 * 1024)
            pulling.describe("python 3.13, glibc 2.41")
        with step(view, AMD64, "install wheels") as installing:
            installing.describe("20 packages")
        view(None, "OCI layout written to out")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("arm64 pull base (")
    assert "3.0 MiB at " in lines[0] and "/s, python 3.13, glibc 2.41" in lines[0]
    assert lines[1].startswith("amd64 install wheels (") and lines[1].endswith("s)  20 packages")
    assert lines[2] == "crossdock OCI layout written to out"
    assert all(len(line) <= 80 for line in lines)


def test_a_failed_step_says_so_and_the_error_propagates():
    console, out = _console(terminal=False)
    view = ProgressView(console, live=False)
    with pytest.raises(RuntimeError), step(view, ARM64, "verify"):
        raise RuntimeError("boom")
    assert out.getvalue().startswith("arm64 verify FAILED (")


def test_quiet_keeps_warnings_only():
    console, out = _console(terminal=False)
    with ProgressView(console, live=False, quiet=True) as view:
        with step(view, ARM64, "bytecode"):
            pass
        view(ARM64, "pulled")
        view(ARM64, "warning: no Python 3.13 on this machine")
    assert out.getvalue() == "arm64 warning: no Python 3.13 on this machine\n"


def test_on_a_terminal_live_lines_collapse_to_one_summary_per_step():
    console, out = _console(terminal=True)
    with ProgressView(console, live=True) as view:
        for platform in (ARM64, AMD64):
            with step(view, platform, "dependency layer") as packing:
                packing.describe("39.6 MiB compressed")
    text = out.getvalue()
    summaries = [line for line in text.splitlines() if "✔" in line]
    assert len(summaries) == 2
    assert "arm64" in summaries[0] and "39.6 MiB compressed" in summaries[0]


def test_no_progress_and_sizes():
    with step(NO_PROGRESS, None, "anything", total=10) as quiet:
        quiet.advance(10)
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(5 * 1024**3) == "5.0 GiB"


def test_warnings_wrap_at_the_width_and_other_notes_stay_whole():
    console, out = _console(terminal=False)
    view = ProgressView(console, live=False)
    view(None, "warning: " + "word " * 40)
    path = "/" + "x" * 100
    view(None, f"OCI layout written to {path}")
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines[:-1]) and len(lines) > 2
    assert lines[-1] == f"crossdock OCI layout written to {path}"
