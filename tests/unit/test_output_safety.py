"""Names from images and user input are printed literally (issue 13, point 5): rich markup
stays text, emoji codes stay text, and control characters (ESC, OSC, BEL, CR) are shown as
escapes, in verification tables, progress lines and error messages."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from crossdock.cli.common import err_console
from crossdock.text import literal, printable
from crossdock.verify.report import Check, FileRef, Finding, PlatformReport, Requirement

MARKUP = "[bold red]X[/bold red] :smile:"
CONTROL = "evil\x1b]0;owned\x07\x1b[2J\rname\u202e.so"
CROSSDOCK = str(Path(sys.executable).parent / "crossdock")
REPO = Path(__file__).resolve().parents[2]


def test_printable_shows_control_characters_as_escapes():
    assert printable("usr/lib/libx.so") == "usr/lib/libx.so"
    assert printable(CONTROL) == "evil\\x1b]0;owned\\x07\\x1b[2J\\x0dname\\u202e.so"
    assert printable("a\nb") == "a\\x0ab"
    assert printable("a\nb", keep_newlines=True) == "a\nb"
    assert literal(MARKUP) == "\\[bold red]X\\[/bold red] :smile:"


def _rendered(report: PlatformReport) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=400, emoji=False, force_terminal=True)
    report.render(console)
    return buffer.getvalue()


def test_a_verification_table_prints_hostile_file_names_literally():
    finding = Finding(
        Check.ELF_PLATFORM, FileRef(f"/app/{MARKUP}/{CONTROL}", 1), "x86-64", MARKUP, ""
    )
    report = PlatformReport(
        platform="linux/amd64",
        image=f"image {MARKUP}",
        python_version="3.13",
        glibc=Requirement(None),
        glibcxx=Requirement(None),
        checks=("elf-platform",),
        notes=(f"note {CONTROL}",),
        failures=(finding,),
    )
    out = _rendered(report)
    assert "[bold red]X[/bold red] :smile:" in out
    assert "\\x1b]0;owned\\x07" in out
    assert "\x1b]0;" not in out and "\x07" not in out and "\r" not in out
    assert "😄" not in out


def test_the_error_console_prints_emoji_codes_as_typed():
    assert err_console._emoji is False


def test_user_input_in_an_error_is_printed_literally(tmp_path):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "300"}
    result = subprocess.run(
        [CROSSDOCK, "verify", "a:b:c[bold]x[/bold]\x1b[31m"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "a:b:c[bold]x[/bold]\\x1b[31m" in result.stderr, result.stderr
    assert "\x1b[31m" not in result.stderr


def test_an_unwritable_output_fails_before_the_build_in_one_line(tmp_path):
    for option, path, what in (
        ("--oci-layout", "/proc/crossdock-test/layout", "OCI layout"),
        ("--docker-archive", "/proc/crossdock-test/image.tar", "docker archive"),
    ):
        result = subprocess.run(
            [CROSSDOCK, "build", "-C", str(REPO / "example"), "--service", "api", option, path],
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "CROSSDOCK_CACHE_DIR": str(tmp_path)},
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert f"error: cannot write the {what} {path}" in result.stderr
        assert "Traceback" not in result.stderr
        assert not list(tmp_path.iterdir())  # nothing was built
